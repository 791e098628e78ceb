"""Leader election on a ``coordination.k8s.io/v1`` Lease, following client-go's rules.

* Timing: lease 15 s, renew deadline 10 s, retry 2 s (jittered up to x1.2 while acquiring);
  ``lease_duration > renew_deadline > 1.2 * retry_period`` is enforced.
* Expiry is judged by **our own monotonic clock**: a holder's lease is valid until
  ``lease_duration`` after we last saw its record change. Timestamps written by others are
  never compared with our clock, so candidates need no clock synchronisation.
* Writes are optimistic-concurrency PUTs of the record we last read (409 = someone else won).
* ``leaseTransitions`` increments when the holder changes; ``acquireTime`` is kept on renewal.
* A leader that cannot renew within ``renew_deadline`` gives up leadership (the manager then
  stops: it must not keep acting on stale authority).
* On graceful shutdown the lease is released (holder cleared, duration 1 s) so a standby
  takes over within one retry period instead of a whole lease duration.
* :meth:`LeaderElector.holds_lease` is the fence the manager gives its controllers: true only
  while the last successful acquire/renew *started* less than ``renew_deadline`` ago by our
  monotonic clock. A standby cannot take over before ``lease_duration`` after it saw that
  write, so a worker that checks it before each reconcile never overlaps the next leader,
  even when the process was paused (SIGSTOP, a stalled event loop) and resumes with stale
  timers: the check is made against the clock, not against a callback that may not have
  run yet. See docs/runtime.md (leader election guarantees).
"""

from __future__ import annotations

import asyncio
import random
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from jangar.runtime.client import NO_RETRY, Client
from jangar.runtime.clock import MONOTONIC, Clock
from jangar.runtime.errors import ApiError, ConflictError, NotFoundError
from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.resources import LEASES, JsonObject

log = structlog.get_logger("jangar.runtime.leaderelection")

JITTER_FACTOR = 1.2


def timing_problem(
    lease_duration: float, renew_deadline: float, retry_period: float
) -> tuple[str, str] | None:
    """The one rule on election timings: ``lease_duration > renew_deadline > 1.2 * retry_period > 0``.

    A renewal is retried every ``retry_period`` (jittered up to x1.2) until ``renew_deadline``, so at least
    one retry must fit before the deadline, and the deadline must pass before another candidate may take
    the Lease. Returns ``(which, problem)`` with ``which`` one of ``lease_duration``, ``renew_deadline``,
    ``retry_period`` (the value to change), or ``None`` when the timings are usable. Settings validation
    (`jangar.settings`) and the chart (`agents.validateLeaderElection`) apply the same rule.
    """
    if retry_period <= 0:
        return ("retry_period", f"must be > 0, got {retry_period:g}")
    if renew_deadline <= 0:
        return ("renew_deadline", f"must be > 0, got {renew_deadline:g}")
    if lease_duration <= 0:
        return ("lease_duration", f"must be > 0, got {lease_duration:g}")
    if not renew_deadline < lease_duration:
        return (
            "renew_deadline",
            f"must be less than the lease duration ({lease_duration:g}s), got {renew_deadline:g}s",
        )
    if not JITTER_FACTOR * retry_period < renew_deadline:
        return (
            "retry_period",
            f"x{JITTER_FACTOR:g} (its jitter) must be less than the renew deadline ({renew_deadline:g}s), "
            f"got {retry_period:g}s (at most {renew_deadline / JITTER_FACTOR:.4g}s excluded)",
        )
    return None


def default_identity() -> str:
    """``<hostname>_<uuid>``, as controller-runtime does."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class LeaderElectionOptions:
    name: str
    """Lease name (also the ``name`` label of ``leader_election_master_status``)."""
    namespace: str
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        problem = timing_problem(self.lease_duration, self.renew_deadline, self.retry_period)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderLost(RuntimeError):
    """Leadership was lost (renewal failed); the process should exit and restart."""


class LeaderElector:
    """Acquires, renews and releases one Lease. Run :meth:`run`; watch :attr:`elected`."""

    def __init__(
        self,
        client: Client,
        options: LeaderElectionOptions,
        *,
        metrics: RuntimeMetrics | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.options = options
        # Each request must fail well inside the renew deadline (controller-runtime: max(RD/2, 1 s)).
        self.client = Client(
            client.api,
            timeout=max(options.renew_deadline / 2, 1.0),
            retry=NO_RETRY,
            metrics=client.metrics,
        )
        self.clock = clock
        self.elected = asyncio.Event()
        self.lost = asyncio.Event()
        self._observed_spec: dict[str, Any] | None = None
        self._observed_time = 0.0
        self._lease: JsonObject | None = None
        self._renewed_at: float | None = None
        """Monotonic time at which the last successful acquire/renew round started."""
        self._gauge = metrics.leader_election_master_status.labels(options.name) if metrics else None
        if self._gauge is not None:
            self._gauge.set(0)
        self._log = log.bind(lease=f"{options.namespace}/{options.name}", identity=options.identity)

    @property
    def is_leader(self) -> bool:
        return self.elected.is_set() and not self.lost.is_set()

    def holds_lease(self) -> bool:
        """True while we may act as leader: elected, not lost, and renewed within ``renew_deadline``.

        Judged by the clock at the moment of the call (not by :attr:`lost`, which a timer sets
        later), so it is safe to call right before acting.
        """
        if not self.is_leader or self._renewed_at is None:
            return False
        return self.clock.now() - self._renewed_at < self.options.renew_deadline

    async def run(self) -> None:
        """Acquire, then renew until renewal fails (sets :attr:`lost`) or the task is cancelled."""
        o = self.options
        self._log.info("waiting for leadership")
        while not await self._try():
            await asyncio.sleep(o.retry_period * (1 + random.random() * (JITTER_FACTOR - 1)))
        self._set_leader(True)
        self._log.info("became leader")
        while True:
            await asyncio.sleep(o.retry_period)
            try:
                async with asyncio.timeout(o.renew_deadline):
                    while not await self._try():
                        await asyncio.sleep(o.retry_period)
            except TimeoutError:
                self._set_leader(False)
                self.lost.set()
                self._log.error("leadership lost: could not renew within the deadline")
                return

    def _set_leader(self, leader: bool) -> None:
        if leader:
            self.elected.set()
        if self._gauge is not None:
            self._gauge.set(1 if leader else 0)

    async def _try(self) -> bool:
        """One tryAcquireOrRenew round; True if we hold the lease afterwards.

        Never raises (except on cancellation): an unexpected error counts as a failed round,
        so the renew deadline, not a crashed task, decides when leadership is lost.
        """
        try:
            return await self._try_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.error("leader election round failed unexpectedly", error=repr(exc))
            return False

    async def _try_once(self) -> bool:
        o = self.options
        now = self.clock.now()
        try:
            lease = await self.client.get(LEASES, o.name, o.namespace)
        except NotFoundError:
            spec = self._spec(None)
            try:
                self._lease = await self.client.create(
                    LEASES, {"metadata": {"name": o.name, "namespace": o.namespace}, "spec": spec}
                )
            except ApiError as exc:
                self._log.info("lease create failed", error=str(exc))
                return False
            self._observe(spec, now)
            self._renewed_at = now
            return True
        except ApiError as exc:
            self._log.warning("lease read failed", error=str(exc))
            return False
        spec = lease.get("spec") or {}
        if spec != self._observed_spec:
            self._observe(spec, now)
        holder = spec.get("holderIdentity") or ""
        duration = float(spec.get("leaseDurationSeconds") or o.lease_duration)
        if holder and holder != o.identity and self._observed_time + duration > now:
            return False  # someone else holds a lease that is still valid by our clock
        new_spec = self._spec(spec)
        lease["spec"] = new_spec
        try:
            self._lease = await self.client.update(LEASES, lease)
        except ConflictError:
            return False
        except ApiError as exc:
            self._log.warning("lease update failed", error=str(exc))
            return False
        self._observe(new_spec, now)
        self._renewed_at = now
        return True

    def _spec(self, current: dict[str, Any] | None) -> dict[str, Any]:
        o = self.options
        now = _micro_time()
        current = current or {}
        ours = current.get("holderIdentity") == o.identity
        transitions = int(current.get("leaseTransitions") or 0)
        if current and not ours:
            transitions += 1
        return {
            "holderIdentity": o.identity,
            "leaseDurationSeconds": int(o.lease_duration),
            "acquireTime": current.get("acquireTime") if ours and current.get("acquireTime") else now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def _observe(self, spec: dict[str, Any], now: float) -> None:
        self._observed_spec = spec
        self._observed_time = now

    async def release(self) -> bool:
        """Give the lease up at once (holder cleared, 1 s duration) if we hold it."""
        self._set_leader(False)
        self._renewed_at = None
        if self._lease is None or not self.elected.is_set() or self.lost.is_set():
            return False
        lease = self._lease
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.options.identity:
            return False
        now = _micro_time()
        spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=now, acquireTime=now)
        lease["spec"] = spec
        try:
            await self.client.update(LEASES, lease)
        except ApiError as exc:
            self._log.warning("lease release failed", error=str(exc))
            return False
        self._log.info("lease released")
        return True
