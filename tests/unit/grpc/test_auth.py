"""Token parsing and comparison for the gRPC API (weak point 16: constant-time, never `==`)."""

from __future__ import annotations

import hmac

import pytest

from jangar.grpc import auth


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([("authorization", "Bearer tok")], ["tok"]),
        ([("authorization", "bearer tok")], ["tok"]),
        ([("authorization", "BEARER   tok  ")], ["tok"]),
        ([("Authorization", "tok")], ["tok"]),  # no prefix: the raw value
        ([("x-jangar-token", " tok ")], ["tok"]),
        ([("authorization", "Bearer a"), ("x-jangar-token", "b")], ["a", "b"]),
        ([("authorization", "Bearer ")], []),  # an empty token is no token
        ([("authorization-bin", b"tok")], []),
        ([("x-other", "tok")], []),
        ([], []),
        (None, []),
    ],
)
def test_presented_tokens(metadata: list[tuple[str, str | bytes]] | None, expected: list[str]) -> None:
    assert auth.presented_tokens(metadata) == expected


def test_bearer_prefix_is_only_stripped_as_a_prefix() -> None:
    # "Bearertok" has no separating space: not the Bearer scheme, the whole value is the token.
    assert auth.presented_tokens([("authorization", "Bearertok")]) == ["Bearertok"]


def test_no_configured_token_allows_everyone() -> None:
    assert auth.authorized(None, [])
    assert auth.authorized("", [("authorization", "Bearer anything")])


def test_configured_token_must_match_exactly() -> None:
    assert auth.authorized("s3cret", [("authorization", "Bearer s3cret")])
    assert auth.authorized("s3cret", [("x-jangar-token", "s3cret")])
    # A wrong authorization header does not hide a right x-jangar-token (e.g. a proxy's own header).
    assert auth.authorized("s3cret", [("authorization", "Basic abc"), ("x-jangar-token", "s3cret")])
    for wrong in ("s3cre", "s3crett", "S3CRET", "", "Bearer s3cret"):
        assert not auth.authorized("s3cret", [("x-jangar-token", wrong)]), wrong
    assert not auth.authorized("s3cret", [])


def test_non_ascii_tokens_compare_instead_of_raising() -> None:
    # hmac.compare_digest raises TypeError on non-ASCII str; the bytes comparison must not.
    assert auth.authorized("gehéim", [("x-jangar-token", "gehéim")])
    assert not auth.authorized("gehéim", [("x-jangar-token", "geheim")])


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("jangar.grpc.auth.hmac.compare_digest", spy)
    assert auth.authorized("tok", [("authorization", "Bearer tok"), ("x-jangar-token", "nope")])
    # Every presented token was compared, through compare_digest, even after the first matched.
    assert calls == [(b"tok", b"tok"), (b"tok", b"nope")]


def test_client_metadata_round_trips() -> None:
    assert auth.bearer_metadata(None) == ()
    md = auth.bearer_metadata("tok")
    assert auth.authorized("tok", md)
