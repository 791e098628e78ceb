"""The leader fence on writes: a request that mutates is refused once the fence is closed.

A controller worker sets :data:`LEADER_FENCE` (the manager's ``LeaderElector.holds_lease``) for the
duration of each reconcile; :class:`~jangar.runtime.client.Client` checks it before *every attempt*
of a POST, PUT, PATCH or DELETE and raises :class:`LeaderFencedError` instead of sending when it is
false. It is a context variable, so it follows the reconcile into the tasks it spawns and applies to
whatever Client the reconciler writes through, while writes made elsewhere (the HTTP API and gRPC
surfaces, which need no leadership) are never fenced.

With the worker's check before each reconcile (``Controller.set_leader_check``) this closes the
last window a paused leader had: a reconcile in flight when the process was stopped resumes after a
successor took over, and its next write is refused instead of sent. What remains is a write already
on the wire when the fence closed (it left while the lease was still ours) that the network holds
for longer than ``lease_duration - renew_deadline``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from jangar.runtime.errors import ApiError

LEADER_FENCE: ContextVar[Callable[[], bool] | None] = ContextVar("jangar_leader_fence", default=None)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LeaderFencedError(ApiError):
    """A write refused because this replica no longer holds the lease (never sent)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(0, "LeaderFenced", f"{method} {path}: not sent, the leader lease is not held")


def check_write(method: str, path: str) -> None:
    """Raise :class:`LeaderFencedError` if ``method`` writes and the current fence is closed."""
    if method in READ_METHODS:
        return
    fence = LEADER_FENCE.get()
    if fence is not None and not fence():
        raise LeaderFencedError(method, path)
