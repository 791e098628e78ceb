"""The value the controller hands to the recorder: what it knows about one AgentRun right now.

A ``RunEvent`` is a *snapshot*, not a diff. The controller is level-triggered, so it may send the same
snapshot on every reconcile; the store turns a snapshot into an upsert of the run row plus, when the phase
differs from the stored one, a transition row. Fields left ``None`` keep whatever the row already holds,
so a later event that knows less (no VCS context, say) never erases what an earlier one wrote.

Everything text-like is sanitised on construction (credentials in URLs, token-looking strings, NUL bytes),
because a run record must never persist a secret (reference §12.16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

MAX_TEXT = 32 * 1024
_TOKEN_PATTERNS = (
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    re.compile(r"(?i)\b(bearer|token|password|secret)([=: ]+)[^\s,;'\"]+"),
)
# Bounded repetitions: these run on untrusted text of up to 32 KiB and must stay linear.
_URL_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.\-]{0,31}://)[^/@\s]{1,512}@")


def redact_text(value: str | None) -> str | None:
    """Remove credentials from free text before it is stored: URL user-info and token-shaped strings."""
    if value is None:
        return None
    text = value[: MAX_TEXT * 2].replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    text = _URL_USERINFO.sub(r"\1***@", text)
    for pattern in _TOKEN_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
        else:
            text = pattern.sub("***", text)
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 3] + "..."
    return text


def strip_url_credentials(value: str | None) -> str | None:
    """Drop ``user:password@`` from a repository URL; leave ``owner/repo`` forms untouched."""
    if value is None:
        return None
    text = value.replace("\x00", "").strip()
    if "://" not in text:
        return redact_text(text)
    parts = urlsplit(text)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{host}{port}"))


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class JobRef:
    """The Kubernetes Job that runs (or ran) the agent."""

    name: str
    namespace: str
    uid: str | None = None


@dataclass(frozen=True, slots=True)
class VcsContext:
    """Where the run's code lives. Only locations and branch names: tokens are never part of it."""

    provider: str | None = None
    repository: str | None = None
    base_branch: str | None = None
    head_branch: str | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "repository", strip_url_credentials(self.repository))
        for name in ("provider", "base_branch", "head_branch", "mode"):
            object.__setattr__(self, name, redact_text(getattr(self, name)))


@dataclass(frozen=True, slots=True)
class RunEvent:
    """A snapshot of one AgentRun, keyed by its Kubernetes ``uid``.

    ``at`` is when the state was reached, and it is part of the transition's idempotency key
    ``(run_uid, to_phase, at)``: pass the time from the AgentRun status (the condition's
    ``lastTransitionTime``, ``startedAt`` or ``finishedAt``), not ``now()``, so re-recording the same
    state after a controller restart finds the row that is already there.
    """

    uid: str
    namespace: str
    name: str
    at: datetime
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    agent: str | None = None
    provider: str | None = None
    implementation: str | None = None
    runtime_type: str | None = None
    job: JobRef | None = None
    vcs: VcsContext | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    source_version: int | None = None
    """The run's metadata.resourceVersion (as an integer) this snapshot was taken at, when known."""

    def __post_init__(self) -> None:
        if not self.uid or not self.uid.strip():
            raise ValueError("RunEvent.uid is required (the AgentRun's metadata.uid)")
        if not self.namespace or not self.name:
            raise ValueError("RunEvent.namespace and RunEvent.name are required")
        object.__setattr__(self, "at", _aware(self.at, "at"))
        object.__setattr__(self, "started_at", _aware(self.started_at, "started_at"))
        object.__setattr__(self, "finished_at", _aware(self.finished_at, "finished_at"))
        if self.exit_code is not None and not -(2**31) <= self.exit_code < 2**31:
            raise ValueError(f"RunEvent.exit_code {self.exit_code} is out of range")
        object.__setattr__(self, "message", redact_text(self.message))
        object.__setattr__(self, "reason", redact_text(self.reason))

    @property
    def key(self) -> tuple[str, str | None, datetime]:
        """The idempotency key of the transition this event may produce."""
        return (self.uid, self.phase, self.at)


# -- OrchestrationRuns and ToolRuns (issue 10) -------------------------------------------------------------
TRACKED_KINDS = ("OrchestrationRun", "ToolRun")
"""The kinds a `TrackedRunEvent` records; each has its own pair of tables (`jangar.storage.models`)."""


@dataclass(frozen=True, slots=True)
class TrackedRunEvent:
    """A snapshot of one OrchestrationRun or ToolRun, keyed by its Kubernetes ``uid``; the same snapshot
    rules as `RunEvent` (fields left ``None`` keep the stored value, ``at`` comes from the status).

    ``target`` is the Orchestration (for an OrchestrationRun) or the Tool (for a ToolRun) it runs;
    ``parent_run``/``parent_step`` the OrchestrationRun and step it is a child of, when it is one.
    """

    kind: str
    uid: str
    namespace: str
    name: str
    at: datetime
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    target: str | None = None
    delivery_id: str | None = None
    parent_run: str | None = None
    parent_step: str | None = None
    job: JobRef | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    source_version: int | None = None
    """The run's metadata.resourceVersion (as an integer) this snapshot was taken at, when known."""

    def __post_init__(self) -> None:
        if self.kind not in TRACKED_KINDS:
            raise ValueError(f"TrackedRunEvent.kind must be one of {', '.join(TRACKED_KINDS)}")
        if not self.uid or not self.uid.strip():
            raise ValueError(f"TrackedRunEvent.uid is required (the {self.kind}'s metadata.uid)")
        if not self.namespace or not self.name:
            raise ValueError("TrackedRunEvent.namespace and TrackedRunEvent.name are required")
        object.__setattr__(self, "at", _aware(self.at, "at"))
        object.__setattr__(self, "started_at", _aware(self.started_at, "started_at"))
        object.__setattr__(self, "finished_at", _aware(self.finished_at, "finished_at"))
        for name in ("message", "reason", "delivery_id"):
            object.__setattr__(self, name, redact_text(getattr(self, name)))

    @property
    def key(self) -> tuple[str, str | None, datetime]:
        """The idempotency key of the transition this event may produce."""
        return (self.uid, self.phase, self.at)


RecordEvent = RunEvent | TrackedRunEvent
"""Anything the recorder accepts."""


def source_version(resource_version: object) -> int | None:
    """``metadata.resourceVersion`` as a record's ``source_version``: an integer (etcd's revision), or
    ``None`` when the server's versions are not plain integers (then no tie is broken by it)."""
    text = str(resource_version or "")
    if not text.isdigit() or len(text) > 18:
        return None
    return int(text)
