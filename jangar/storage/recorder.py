"""A durable, buffered writer of run records that the controller never has to wait for.

``RunRecorder.record(event)`` only appends to an in-memory queue and returns; a background task writes
batches to Postgres. When the database is down the queue keeps every record and the task retries with
exponential backoff (capped), so reconciling goes on and the records catch up once Postgres is back. A
record leaves the queue only after the transaction holding it committed, so a failed batch is retried
whole and nothing is written twice (the upserts are idempotent anyway).

Records are level-triggered (issue 12): the controller offers the current snapshot of every run on every
reconcile, terminal runs included, and ``record()`` answers with an `Offer`:

* ``RECORDED``: this exact snapshot was already committed by this process (or rejected as invalid data,
  which no retry can fix), so nothing is queued and Postgres is not touched;
* ``PENDING``: queued (now or earlier) and not committed yet;
* ``REFUSED``: the buffer holds ``max_pending`` records, or the schema is missing; nothing was queued
  and the caller offers it again later (the reconcilers requeue the run for that).

The buffer is therefore bounded and a refusal loses nothing: the run in Kubernetes still holds the state,
and the next offer brings it back. What is not durable: records still in memory when the process dies.
After a restart the controller reconciles every run from the cluster and offers its current state again,
and the store turns that into the same rows (see ``jangar.storage.store``), so a crash costs a delay,
never a record. Intermediate phases a run passed through while the process was down may then be missing
from the transition history; the final state never is.

The only records ever dropped are ones Postgres rejects as invalid data (a bug, not an outage); they are
logged and counted in ``jangar_run_records_rejected_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import random
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Self

import asyncpg.exceptions as asyncpg_exc  # type: ignore[import-untyped]
import asyncpg.exceptions._base as asyncpg_base  # type: ignore[import-untyped]
import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from jangar.storage.engine import create_engine
from jangar.storage.events import RecordEvent, redact_text
from jangar.storage.metrics import RecorderMetrics, recorder_metrics
from jangar.storage.models import Base
from jangar.storage.store import apply_events
from jangar.storage.url import DatabaseTarget, normalize_database_url

log = structlog.get_logger(__name__)

_PENDING_WARN_STEP = 10_000
DEFAULT_MAX_PENDING = 10_000
"""`JANGAR_RECORDS_BUFFER_MAX`'s default: records held in memory at most (about 1 KiB each)."""

RECORD_TABLES: tuple[str, ...] = tuple(sorted(Base.metadata.tables))
"""The tables the recorder writes; all must exist (migrations) before it can."""


class Offer(enum.StrEnum):
    """What `RunRecorder.record` did with a snapshot."""

    RECORDED = "recorded"
    """Committed already (or rejected as invalid data): nothing to do."""
    PENDING = "pending"
    """In the buffer, not committed yet."""
    REFUSED = "refused"
    """Not taken (buffer full, or schema missing): offer it again later; nothing is lost."""


@dataclass(frozen=True, slots=True)
class RecorderStatus:
    """Readiness details: reconciling never waits for the database, so this informs but does not gate."""

    healthy: bool
    pending: int
    last_error: str | None
    last_error_at: datetime | None
    last_success_at: datetime | None
    database: str | None
    capacity: int = DEFAULT_MAX_PENDING
    refused: int = 0
    missing_tables: tuple[str, ...] = ()

    @property
    def full(self) -> bool:
        return self.pending >= self.capacity

    @property
    def state(self) -> str:
        """One word for dashboards: ``ok``, ``schema-missing``, ``buffer-full`` or ``database-down``."""
        if self.missing_tables:
            return "schema-missing"
        if self.full:
            return "buffer-full"
        return "ok" if self.healthy else "database-down"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the readiness endpoint."""
        return {
            "state": self.state,
            "healthy": self.healthy,
            "pending": self.pending,
            "capacity": self.capacity,
            "full": self.full,
            "refused": self.refused,
            "missingTables": list(self.missing_tables),
            "lastError": self.last_error,
            "lastErrorAt": self.last_error_at.isoformat() if self.last_error_at else None,
            "lastSuccessAt": self.last_success_at.isoformat() if self.last_success_at else None,
            "database": self.database,
        }


def is_permanent_error(error: BaseException) -> bool:
    """True when retrying cannot help: Postgres rejected the data itself.

    Everything else (connection refused, server shutting down, timeouts, even a missing table while
    migrations have not run yet) is treated as transient and retried, because dropping a record on a
    misclassified error is worse than retrying a hopeless one while ``healthy`` is false.
    """
    return any(isinstance(cause, _PERMANENT) for cause in _causes(error))


_PERMANENT = (
    sa_exc.DataError,
    sa_exc.IntegrityError,
    asyncpg_exc.DataError,  # server class 22: invalid value
    asyncpg_exc.IntegrityConstraintViolationError,  # server class 23
    asyncpg_base.DataError,  # client side: a parameter asyncpg cannot encode
)


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and everything it wraps, innermost last.

    SQLAlchemy keeps the driver's exception in ``.orig``, and the asyncpg adapter raises its own error
    ``from`` asyncpg's, so both ``.orig`` and ``__cause__``/``__context__`` are followed.
    """
    chain: list[BaseException] = []
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in chain):
            continue
        chain.append(current)
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException):
            todo.append(orig)
        wrapped = current.__cause__ or current.__context__
        if wrapped is not None:
            todo.append(wrapped)
    return chain


class RunRecorder:
    """Buffer run records in memory (at most ``max_pending``) and write them to Postgres in the background.

    Usage::

        recorder = RunRecorder(os.environ["DATABASE_URL"])
        await recorder.start()
        offer = recorder.record(RunEvent(uid=..., namespace=..., name=..., at=..., phase="Running"))
        ...                                 # Offer.REFUSED: offer the same state again later
        await recorder.close(timeout=10)   # flush with a deadline on shutdown
    """

    def __init__(
        self,
        database_url: str | DatabaseTarget | None = None,
        *,
        engine: AsyncEngine | None = None,
        batch_size: int = 200,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        dedupe_size: int = 50_000,
        max_pending: int = DEFAULT_MAX_PENDING,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if engine is None and database_url is None:
            raise ValueError("RunRecorder needs a database_url or an engine")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._target = normalize_database_url(database_url) if isinstance(database_url, str) else database_url
        self._engine = engine
        self._owns_engine = engine is None
        self._batch_size = max(1, batch_size)
        self._initial_backoff = initial_backoff
        self._max_backoff = max(max_backoff, initial_backoff)
        self._dedupe_size = max(1, dedupe_size)
        self._max_pending = max_pending
        self._metrics: RecorderMetrics = recorder_metrics(registry)
        self._metrics.capacity.set(max_pending)
        self._queue: deque[RecordEvent] = deque()
        # uid -> (fingerprint of the newest snapshot queued, how many of its snapshots are queued).
        self._queued: dict[str, tuple[int, int]] = {}
        # uid -> fingerprint of the newest snapshot committed (not the event: messages may be 32 KiB each).
        # Bounded: a run evicted from it is written once more on its next offer (a cost, never a loss).
        self._recorded: OrderedDict[str, int] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._healthy = True
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_success_at: datetime | None = None
        self._warned_at = 0
        self._refused = 0
        self._full_logged = False
        self._check_schema = False
        self._missing_tables: tuple[str, ...] = ()

    # -- the controller's side -------------------------------------------------------------------

    def record(self, event: RecordEvent) -> Offer:
        """Offer ``event``'s snapshot and return at once; never raises because the database is down.

        Cheap for a snapshot equal (ignoring ``at``) to the last one queued or committed for the same run:
        nothing is queued and Postgres is not touched, so a controller may call this on every reconcile.
        """
        if self._closed:
            log.warning(
                "run_records.record_after_close",
                kind=_kind(event),
                namespace=event.namespace,
                name=event.name,
            )
        fingerprint = _fingerprint(event)
        queued = self._queued.get(event.uid)
        if queued is not None:
            if queued[0] == fingerprint:
                return Offer.PENDING
        elif self._recorded.get(event.uid) == fingerprint:
            self._recorded.move_to_end(event.uid)
            return Offer.RECORDED
        if self._missing_tables or len(self._queue) >= self._max_pending:
            self._refuse(event)
            return Offer.REFUSED
        self._queued[event.uid] = (fingerprint, (queued[1] if queued else 0) + 1)
        self._queue.append(event)
        self._empty.clear()
        self._metrics.pending.set(len(self._queue))
        if len(self._queue) >= self._warned_at + _PENDING_WARN_STEP:
            self._warned_at = len(self._queue)
            log.warning("run_records.backlog", pending=len(self._queue), last_error=self._last_error)
        self._wakeup.set()
        return Offer.PENDING

    def _refuse(self, event: RecordEvent) -> None:
        self._refused += 1
        self._metrics.refused.inc()
        if not self._full_logged:
            self._full_logged = True
            log.warning(
                "run_records.refusing",
                reason="schema missing" if self._missing_tables else "buffer full",
                pending=len(self._queue),
                capacity=self._max_pending,
                last_error=self._last_error,
                hint="refused records are offered again by the controller's next reconcile of the run",
            )

    @property
    def pending(self) -> int:
        """Records accepted and not yet committed to Postgres."""
        return len(self._queue)

    @property
    def capacity(self) -> int:
        """The most records the buffer holds (`JANGAR_RECORDS_BUFFER_MAX`)."""
        return self._max_pending

    @property
    def healthy(self) -> bool:
        """False from a failed write until the next successful one."""
        return self._healthy

    @property
    def last_error(self) -> str | None:
        """The last write error, without credentials."""
        return self._last_error

    @property
    def missing_tables(self) -> tuple[str, ...]:
        """The record tables found missing (only checked when started with ``check_schema``)."""
        return self._missing_tables

    def status(self) -> RecorderStatus:
        """Details for readiness and diagnostics."""
        return RecorderStatus(
            healthy=self._healthy,
            pending=len(self._queue),
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            last_success_at=self._last_success_at,
            database=self._target.redacted if self._target else None,
            capacity=self._max_pending,
            refused=self._refused,
            missing_tables=self._missing_tables,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, *, check_schema: bool = False) -> None:
        """Start the background writer (idempotent). Does not connect yet, so a down database is fine.

        With ``check_schema`` (migrations are skipped, so nobody creates the tables for us) the writer
        first checks that every record table exists; while some are missing, offers are refused and
        `missing_tables` names them (the readiness check reports it), and the check repeats with backoff
        so that tables created later (a migration job) are picked up.
        """
        if self._task is not None:
            return
        if self._engine is None:
            assert self._target is not None
            self._engine = create_engine(self._target)
        self._closing = False
        self._closed = False
        self._check_schema = check_schema
        self._task = asyncio.create_task(self._run(), name="jangar-run-recorder")
        if self._queue:
            self._wakeup.set()

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is written; return False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self, timeout: float = 10.0) -> int:
        """Flush for at most ``timeout`` seconds, stop the writer, and return how many records are left.

        Records left over are logged (count only) and re-derived by the controller after its restart.
        """
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self._closed = True
        left = len(self._queue)
        if left:
            log.warning("run_records.unflushed_on_close", pending=left, last_error=self._last_error)
        if self._owns_engine and self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        return left

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the writer ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._initial_backoff
        while True:
            if self._check_schema:
                if self._closing:
                    return
                try:
                    await self._find_missing_tables()
                except Exception as error:
                    self._failed(error)
                else:
                    if not self._missing_tables:
                        self._check_schema = False
                        backoff = self._initial_backoff
                        continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = list(islice(self._queue, self._batch_size))
            try:
                await self._drain(batch)
            except Exception as error:
                self._failed(error)
                if _is_undefined_table(error):
                    self._check_schema = True  # dropped under us, or never created: find out which
                delay = backoff * (0.5 + random.random() / 2)
                backoff = min(backoff * 2, self._max_backoff)
                await asyncio.sleep(delay)
            else:
                backoff = self._initial_backoff

    async def _find_missing_tables(self) -> None:
        assert self._engine is not None
        async with self._engine.connect() as conn:
            found = (
                await conn.execute(
                    text("SELECT t FROM unnest(CAST(:tables AS text[])) AS t WHERE to_regclass(t) IS NULL"),
                    {"tables": list(RECORD_TABLES)},
                )
            ).scalars()
            missing = tuple(sorted(str(t) for t in found))
        if missing != self._missing_tables:
            if missing:
                log.error("run_records.schema_missing", missing_tables=list(missing))
            else:
                log.info("run_records.schema_found")
        self._missing_tables = missing
        self._full_logged = False
        if not missing:
            self._healthy = True

    async def _drain(self, batch: Sequence[RecordEvent]) -> None:
        """Write ``batch``; on a data error, write one by one and reject only the bad records."""
        try:
            await self._write(batch)
            self._consume(batch)
        except Exception as error:
            if not is_permanent_error(error):
                raise
            for event in batch:
                try:
                    await self._write([event])
                except Exception as single_error:
                    if not is_permanent_error(single_error):
                        raise
                    self._reject(event, single_error)
                self._consume([event])

    async def _write(self, batch: Sequence[RecordEvent]) -> None:
        assert self._engine is not None
        started = time.perf_counter()
        async with self._engine.begin() as conn:
            result = await apply_events(conn, batch)
        self._metrics.write_seconds.observe(time.perf_counter() - started)
        self._metrics.written.inc(result.events)
        if not self._healthy:
            log.info("run_records.database_recovered", pending=len(self._queue) - len(batch))
        self._healthy = True
        self._last_success_at = datetime.now(UTC)
        self._metrics.database_up.set(1)

    def _consume(self, events: Sequence[RecordEvent]) -> None:
        """``events`` (the head of the queue) are committed, or rejected for good: forget them."""
        for event in events:
            self._queue.popleft()
            fingerprint, count = self._queued.pop(event.uid, (0, 1))
            if count > 1:
                self._queued[event.uid] = (fingerprint, count - 1)
            self._recorded[event.uid] = _fingerprint(event)
            self._recorded.move_to_end(event.uid)
        while len(self._recorded) > self._dedupe_size:
            self._recorded.popitem(last=False)
        self._metrics.pending.set(len(self._queue))
        if len(self._queue) < self._max_pending:
            self._full_logged = False
        if not self._queue:
            self._empty.set()
            self._warned_at = 0

    def _failed(self, error: BaseException) -> None:
        message = _describe(error)
        if self._healthy or message != self._last_error:
            log.warning("run_records.write_failed", error=message, pending=len(self._queue))
        self._healthy = False
        self._last_error = message
        self._last_error_at = datetime.now(UTC)
        self._metrics.write_errors.inc()
        self._metrics.database_up.set(0)

    def _reject(self, event: RecordEvent, error: BaseException) -> None:
        log.error(
            "run_records.rejected",
            kind=_kind(event),
            namespace=event.namespace,
            name=event.name,
            uid=event.uid,
            error=_describe(error),
        )
        self._metrics.rejected.inc()


def _is_undefined_table(error: BaseException) -> bool:
    return any(isinstance(cause, asyncpg_exc.UndefinedTableError) for cause in _causes(error))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _kind(event: RecordEvent) -> str:
    return getattr(event, "kind", "AgentRun")


def _fingerprint(event: RecordEvent) -> int:
    """Identity of a snapshot apart from its time and resourceVersion: equal fingerprints write the same
    row (a resourceVersion bump alone, say a label change, is not worth a write)."""
    return hash(dataclasses.replace(event, at=_EPOCH, source_version=None))


def _describe(error: BaseException) -> str:
    """A one-line error description; SQLAlchemy's carries the SQL and parameters, which we drop."""
    error = _causes(error)[-1]
    lines = f"{type(error).__name__}: {error}".splitlines()
    return redact_text(lines[0] if lines else type(error).__name__) or type(error).__name__
