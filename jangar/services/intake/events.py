"""Webhook payloads → issue events, scope matching, idempotency keys and spec names (reference §6.9).

Pure functions over the decoded payload and headers; `intake.py` does the I/O. Headers are looked up
lower-cased (aiohttp's multidict is case-insensitive; tests pass plain dicts).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from jangar.api.agents.implementation import MAX_SUMMARY, MAX_TEXT
from jangar.scheduler.naming import dns_label

__all__ = [
    "IssueEvent",
    "PayloadError",
    "Provider",
    "clamp_utf8",
    "delivery_id",
    "idempotency_key",
    "is_issue_event",
    "matches_scope",
    "parse_event",
    "spec_name",
]

Provider = Literal["github", "linear"]
PROVIDERS: tuple[Provider, ...] = ("github", "linear")


class PayloadError(ValueError):
    """The payload is not an issue event jangar can turn into an ImplementationSpec."""


@dataclass(frozen=True)
class IssueEvent:
    provider: Provider
    external_id: str
    """`owner/repo#N` (GitHub) or the Linear identifier (`ENG-42`)."""
    summary: str
    text: str
    labels: tuple[str, ...] = ()
    url: str | None = None
    source_version: str | None = None
    repository: str | None = None
    """GitHub: `owner/repo`."""
    number: int | None = None
    """GitHub: the issue number."""
    identifier: str | None = None
    """Linear: the issue identifier."""
    team: str | None = None
    project: str | None = None
    action: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def is_issue_event(provider: Provider, headers: Mapping[str, str]) -> bool:
    """GitHub `x-github-event: issues`, Linear `linear-event: issue` (case-insensitive)."""
    if provider == "github":
        return (_header(headers, "x-github-event") or "").lower() == "issues"
    return (_header(headers, "linear-event") or "").lower() == "issue"


def clamp_utf8(text: str, limit: int = MAX_TEXT) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (never in the middle of a character)."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[:limit].decode("utf-8", errors="ignore")


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _label_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        value = value.get("nodes")
    if not isinstance(value, list):
        return ()
    names: list[str] = []
    for item in value:
        name = _str(item.get("name")) if isinstance(item, Mapping) else _str(item)
        if name:
            names.append(name)
    return tuple(names)


def _named(value: Any, key: str) -> str | None:
    """`team.key` / `project.name`, or the value itself when it is a string."""
    if isinstance(value, Mapping):
        return _str(value.get(key)) or _str(value.get("name"))
    return _str(value)


def _summary(title: str) -> str:
    return title.strip()[:MAX_SUMMARY]


def parse_github(payload: Mapping[str, Any]) -> IssueEvent:
    issue = payload.get("issue")
    repo = payload.get("repository")
    if not isinstance(issue, Mapping) or not isinstance(repo, Mapping):
        raise PayloadError("a GitHub issues event needs issue and repository")
    number = issue.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise PayloadError("issue.number is missing or not a positive integer")
    full_name = _str(repo.get("full_name")) or ""
    owner, _, name = full_name.partition("/")
    if not owner or not name or "/" in name:
        raise PayloadError("repository.full_name must be owner/repo")
    summary = _summary(_str(issue.get("title")) or "")
    raw_body = issue.get("body")
    body = raw_body if isinstance(raw_body, str) else ""
    return IssueEvent(
        provider="github",
        external_id=f"{full_name}#{number}",
        summary=summary,
        text=clamp_utf8(body.strip() or summary),
        labels=_label_names(issue.get("labels")),
        url=_str(issue.get("html_url")),
        source_version=_str(issue.get("updated_at")),
        repository=full_name,
        number=number,
        action=_str(payload.get("action")),
    )


def parse_linear(payload: Mapping[str, Any]) -> IssueEvent:
    data = payload.get("data")
    item: Mapping[str, Any] = data if isinstance(data, Mapping) else payload
    identifier = _str(item.get("identifier"))
    title = _str(item.get("title"))
    if not identifier or not title:
        raise PayloadError("a Linear issue event needs identifier and title")
    summary = _summary(title)
    raw_description = item.get("description")
    description = raw_description if isinstance(raw_description, str) else ""
    return IssueEvent(
        provider="linear",
        external_id=identifier,
        summary=summary,
        text=clamp_utf8(description.strip() or summary),
        labels=_label_names(item.get("labels")),
        url=_str(item.get("url")),
        source_version=_str(item.get("updatedAt")),
        identifier=identifier,
        team=_named(item.get("team"), "key"),
        project=_named(item.get("project"), "name"),
        action=_str(payload.get("action")),
        extra={"id": _str(item.get("id"))} if _str(item.get("id")) else {},
    )


def parse_event(provider: Provider, payload: Any) -> IssueEvent:
    if not isinstance(payload, Mapping):
        raise PayloadError("the payload must be a JSON object")
    return parse_github(payload) if provider == "github" else parse_linear(payload)


def _eq(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def matches_scope(scope: Mapping[str, Any] | None, event: IssueEvent) -> bool:
    """GitHub: `scope.repository` (case-insensitive); Linear: `scope.team`, `scope.project` (case-insensitive,
    and the event must carry them); both: every `scope.labels` entry is on the issue."""
    scope = scope or {}
    if event.provider == "github":
        repo = _str(scope.get("repository"))
        if repo is not None and not _eq(repo, event.repository):
            return False
    else:
        for key, value in (("team", event.team), ("project", event.project)):
            wanted = _str(scope.get(key))
            if wanted is not None and not _eq(wanted, value):
                return False
    wanted_labels = [str(label) for label in scope.get("labels") or ()]
    return all(label in event.labels for label in wanted_labels)


def delivery_id(provider: Provider, headers: Mapping[str, str], event: IssueEvent | None) -> str | None:
    """`x-github-delivery`, or `linear-delivery`, else the Linear `data.id`."""
    if provider == "github":
        return _header(headers, "x-github-delivery")
    found = _header(headers, "linear-delivery")
    if found is None and event is not None:
        found = event.extra.get("id")
    return found


def idempotency_key(provider: Provider, delivery: str | None, event: IssueEvent) -> str:
    """`<provider>:<deliveryId>`, else `<provider>:<externalId>:<sourceVersion>`, else `<provider>:<externalId>`."""
    if delivery:
        return f"{provider}:{delivery}"
    if event.source_version:
        return f"{provider}:{event.external_id}:{event.source_version}"
    return f"{provider}:{event.external_id}"


def spec_name(event: IssueEvent) -> str:
    """GitHub `<owner>-<repo>-<N>-impl`, Linear `linear-<identifier>-impl`, lower-cased and DNS-safe."""
    if event.provider == "github":
        return dns_label(str(event.repository).replace("/", "-"), str(event.number), "impl")
    return dns_label("linear", str(event.identifier), "impl")
