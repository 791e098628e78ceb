"""The typed failures of the runs service; each surface maps them to its protocol's status once.

| error | HTTP | gRPC |
|---|---|---|
| `InvalidRequest` (and `SubmissionError`) | 400 | INVALID_ARGUMENT |
| `NamespaceNotManaged` | 403 | PERMISSION_DENIED |
| `NotFound` | 404 | NOT_FOUND |
| `AlreadyExists` | 409 | ALREADY_EXISTS |
| `QueueFull` | 429 + `Retry-After` | RESOURCE_EXHAUSTED |
| `BudgetExceeded` (a `QueueFull`) | 429 + `Retry-After` | RESOURCE_EXHAUSTED |
"""

from __future__ import annotations

__all__ = ["AlreadyExists", "InvalidRequest", "NamespaceNotManaged", "NotFound", "QueueFull", "ServiceError"]
__all__ += ["BudgetExceeded"]


class ServiceError(Exception):
    """A request the service refuses; `message` is safe to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(ServiceError, ValueError):
    """The request cannot be served as given (a missing or malformed field, `*` as a namespace)."""


class NamespaceNotManaged(ServiceError):
    """The namespace is outside the set the controller manages."""

    def __init__(self, namespace: str) -> None:
        super().__init__(f"namespace {namespace!r} is not managed by this controller")
        self.namespace = namespace


class NotFound(ServiceError):
    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(f"{kind} {namespace}/{name} not found")
        self.kind = kind
        self.namespace = namespace
        self.name = name


class AlreadyExists(ServiceError):
    """The name is taken by a run that is not a replay of this submission (no or another idempotency key)."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        super().__init__(f"{kind} {namespace}/{name} already exists")
        self.kind = kind
        self.namespace = namespace
        self.name = name


class QueueFull(ServiceError):
    """The controller's admission would reject a run submitted now (`QueueLimitExceeded`)."""

    reason = "QueueLimitExceeded"

    def __init__(self, message: str, *, scope: str, limit: int, retry_after: int) -> None:
        super().__init__(message)
        self.scope = scope
        self.limit = limit
        self.retry_after = retry_after


class BudgetExceeded(QueueFull):
    """The Budget the run counts against is exceeded: the controller would hold it (`BudgetExceeded`).
    A `QueueFull`, so every surface answers 429 / RESOURCE_EXHAUSTED with `reason`, `scope` (`budget`) and
    `limit` 0; `budget` and `resource` name what is over."""

    reason = "BudgetExceeded"

    def __init__(self, message: str, *, budget: str, resource: str | None, retry_after: int) -> None:
        super().__init__(message, scope="budget", limit=0, retry_after=retry_after)
        self.budget = budget
        self.resource = resource


__all__ += ["Conflict", "Forbidden"]


class Conflict(ServiceError):
    """The request contradicts the object's current state (a step already decided, a gate not waiting):
    HTTP 409, gRPC FAILED_PRECONDITION (ALREADY_EXISTS when `already_decided`)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Forbidden(ServiceError):
    """The caller may not do this (an ApprovalPolicy's `subjects` do not name them): HTTP 403,
    gRPC PERMISSION_DENIED."""
