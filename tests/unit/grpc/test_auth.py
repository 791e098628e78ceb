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
        ([("x-agents-token", " tok ")], ["tok"]),  # the 0.9.29 header (issue 13)
        ([("X-Agents-Token", "a"), ("x-jangar-token", "b")], ["a", "b"]),
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


def test_configured_token_must_match_exactly() -> None:
    assert auth.token_matches("s3cret", "s3cret")
    for wrong in ("s3cre", "s3crett", "S3CRET", "", "Bearer s3cret"):
        assert not auth.token_matches("s3cret", wrong), wrong


def test_non_ascii_tokens_compare_instead_of_raising() -> None:
    # hmac.compare_digest raises TypeError on non-ASCII str; the bytes comparison must not.
    assert auth.token_matches("gehéim", "gehéim")
    assert not auth.token_matches("gehéim", "geheim")


async def test_shared_token_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from jangar.access import SHARED_TOKEN_USER, SharedTokenAccess, Unauthenticated
    from jangar.access.testing import StaticAccess

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("jangar.access.review.hmac.compare_digest", spy)
    access = SharedTokenAccess(StaticAccess(users={}), "tok")
    assert (await access.authenticate("tok")).username == SHARED_TOKEN_USER
    with pytest.raises(Unauthenticated):
        await access.authenticate("nope")
    assert calls == [(b"tok", b"tok"), (b"tok", b"nope")]
