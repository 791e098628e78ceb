"""Webhook payload parsing, scope matching, keys, names and signatures (reference §6.9, steps 2 and 5-8)."""

from typing import Any

import pytest

from jangar.services.intake import (
    PayloadError,
    idempotency_key,
    parse_event,
    sign_github,
    sign_linear,
    verify,
)
from jangar.services.intake.events import (
    clamp_utf8,
    delivery_id,
    is_issue_event,
    matches_scope,
    spec_name,
)


def github(**issue: Any) -> dict[str, Any]:
    base = {
        "number": 2519,
        "title": "  Fix the thing  ",
        "body": "Details",
        "labels": [{"name": "codex"}, {"name": "bug"}],
        "html_url": "https://github.com/proompteng/lab/issues/2519",
        "updated_at": "2026-02-01T00:00:00Z",
    }
    return {"action": "opened", "issue": {**base, **issue}, "repository": {"full_name": "proompteng/lab"}}


def linear(**data: Any) -> dict[str, Any]:
    base = {
        "id": "uuid-1",
        "identifier": "ENG-42",
        "title": "Linear issue",
        "description": "Do it",
        "labels": {"nodes": [{"name": "codex"}]},
        "team": {"key": "ENG"},
        "project": {"name": "Core"},
        "url": "https://linear.app/x/issue/ENG-42",
        "updatedAt": "2026-02-02T00:00:00Z",
    }
    return {"action": "update", "data": {**base, **data}}


def test_github_issue_is_parsed_as_the_reference_does() -> None:
    event = parse_event("github", github())
    assert event.external_id == "proompteng/lab#2519"
    assert event.summary == "Fix the thing"
    assert event.text == "Details"
    assert event.labels == ("codex", "bug")
    assert event.source_version == "2026-02-01T00:00:00Z"
    assert spec_name(event) == "proompteng-lab-2519-impl"


def test_github_text_falls_back_to_the_summary_and_is_clamped() -> None:
    assert parse_event("github", github(body=None)).text == "Fix the thing"
    big = parse_event("github", github(body="é" * 100_000)).text
    assert len(big.encode()) <= 131072 and big == "é" * 65536
    assert parse_event("github", github(title="x" * 500)).summary == "x" * 256
    assert clamp_utf8("abc", 2) == "ab"


@pytest.mark.parametrize(
    "payload",
    [
        {"issue": {"title": "t"}, "repository": {"full_name": "a/b"}},
        {"issue": {"number": 1}, "repository": {"full_name": "nope"}},
        {"issue": {"number": True}, "repository": {"full_name": "a/b"}},
        {"repository": {"full_name": "a/b"}},
        [],
    ],
)
def test_unparseable_github_payloads(payload: Any) -> None:
    with pytest.raises(PayloadError):
        parse_event("github", payload)


def test_linear_issue_uses_data_and_its_aliases() -> None:
    event = parse_event("linear", linear())
    assert (event.external_id, event.team, event.project, event.labels) == (
        "ENG-42",
        "ENG",
        "Core",
        ("codex",),
    )
    assert spec_name(event) == "linear-eng-42-impl"
    flat = parse_event("linear", {"identifier": "ENG-7", "title": "t", "team": "eng", "labels": ["a"]})
    assert (flat.team, flat.labels, flat.text) == ("eng", ("a",), "t")
    with pytest.raises(PayloadError):
        parse_event("linear", {"data": {"title": "no identifier"}})


def test_scope_matching() -> None:
    gh = parse_event("github", github())
    assert matches_scope({"repository": "ProompTeng/Lab", "labels": ["codex"]}, gh)
    assert not matches_scope({"repository": "proompteng/other"}, gh)
    assert not matches_scope({"labels": ["codex", "missing"]}, gh)
    assert matches_scope(None, gh)
    ln = parse_event("linear", linear())
    assert matches_scope({"team": "eng", "project": "core", "labels": ["codex"]}, ln)
    assert not matches_scope({"team": "OPS"}, ln)
    no_project = parse_event("linear", linear(project=None))
    assert not matches_scope({"project": "Core"}, no_project)


def test_idempotency_keys_and_delivery_ids() -> None:
    gh = parse_event("github", github())
    assert delivery_id("github", {"x-github-delivery": "d-1"}, gh) == "d-1"
    assert idempotency_key("github", "d-1", gh) == "github:d-1"
    assert idempotency_key("github", None, gh) == "github:proompteng/lab#2519:2026-02-01T00:00:00Z"
    assert idempotency_key("github", None, parse_event("github", github(updated_at=None))) == (
        "github:proompteng/lab#2519"
    )
    ln = parse_event("linear", linear())
    assert delivery_id("linear", {"Linear-Delivery": "L-1"}, ln) == "L-1"
    assert delivery_id("linear", {}, ln) == "uuid-1"


def test_event_headers() -> None:
    assert is_issue_event("github", {"x-github-event": "issues"})
    assert not is_issue_event("github", {"x-github-event": "push"})
    assert is_issue_event("linear", {"linear-event": "Issue"})
    assert not is_issue_event("linear", {})


def test_signatures_are_checked() -> None:
    body = b'{"a": 1}'
    secret = b"s3cret"
    assert verify("github", secret, body, {"x-hub-signature-256": sign_github(secret, body)})
    assert not verify("github", b"other", body, {"x-hub-signature-256": sign_github(secret, body)})
    assert not verify("github", secret, body + b" ", {"x-hub-signature-256": sign_github(secret, body)})
    import hashlib
    import hmac

    sha1 = "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
    assert verify("github", secret, body, {"x-hub-signature": sha1})
    assert not verify("github", secret, body, {"x-hub-signature-256": "md5=abc"})
    assert not verify("github", secret, body, {})
    assert verify("linear", secret, body, {"linear-signature": sign_linear(secret, body)})
    assert not verify("linear", secret, body, {"linear-signature": sign_github(secret, body)})
    assert not verify("github", b"", body, {"x-hub-signature-256": sign_github(b"", body)})
