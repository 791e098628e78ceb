"""API errors, decoded from the server's ``Status`` body, with subclasses for the common cases."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """The API server answered with an error status (or the transport failed: ``status == 0``)."""

    def __init__(
        self,
        status: int,
        reason: str = "",
        message: str = "",
        body: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body
        self.retry_after = retry_after

    @classmethod
    def from_status(
        cls, status: int, body: dict[str, Any] | None, retry_after: float | None = None
    ) -> ApiError:
        """Pick the most specific subclass for an HTTP status and decoded ``Status`` body."""
        body = body or {}
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        code = int(body.get("code") or status)
        klass: type[ApiError] = ApiError
        if code == 404:
            klass = NotFoundError
        elif code == 409:
            klass = AlreadyExistsError if reason == "AlreadyExists" else ConflictError
        elif code == 410 or reason in ("Expired", "Gone"):
            klass = GoneError
        elif code == 422:
            klass = InvalidError
        elif code == 429:
            klass = TooManyRequestsError
        return klass(code, reason, message, body, retry_after)


class NotFoundError(ApiError):
    """404: the object (or the resource type) does not exist."""


class ConflictError(ApiError):
    """409: optimistic-concurrency failure (stale resourceVersion) or an apply conflict."""


class AlreadyExistsError(ConflictError):
    """409 with reason ``AlreadyExists``: a create of an existing name."""


class GoneError(ApiError):
    """410: the requested resourceVersion is too old (compacted); the caller must relist."""


class InvalidError(ApiError):
    """422: the object failed validation."""


class TooManyRequestsError(ApiError):
    """429: throttled by API Priority and Fairness (retried by the client)."""


class WatchStalledError(Exception):
    """The watch stream delivered nothing (not even a bookmark) for longer than the watchdog allows."""


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, NotFoundError)


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ConflictError)
