"""`WebhookIntake`: verify, match, de-duplicate and queue webhook deliveries; a worker applies them.

The HTTP route (`jangar.server.webhooks_api`) hands the raw request to `receive`, which answers at once
(reference §6.9, steps 1-9): the work — apply the ImplementationSpec, optionally start an AgentRun, record
the delivery on the source — is done by one worker off a bounded queue, with exponential retries.

What is different from the reference, and why:

* de-duplication is by `<ns>/<source>:<idempotencyKey>` for 1 h, but a delivery that failed for good is
  forgotten, so the provider's own redelivery can try again; and processing is idempotent on its own (the
  spec has a deterministic name and is applied; a run has a deterministic name), so a replay after a restart
  (the in-memory set is lost) changes nothing either;
* writes use their own field manager and only the fields the intake owns (§12.4): the spec's `spec`, labels,
  `status.syncedAt`/`sourceVersion` and condition `Synced`; the source's `status.lastWebhook`,
  `lastSyncedAt` and conditions `Synced`/`Error`. `Ready` stays the ImplementationSource controller's
  (`WebhookReady`), so the two writers never undo each other;
* optionally an AgentRun per accepted delivery (`spec.runTemplate.enabled`), submitted through the same
  `RunsService` as `POST /v1/agent-runs` (admission, idempotency by the delivery's key).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from jangar.api.contract import (
    LABEL_IMPLEMENTATION_SOURCE,
    LABEL_SOURCE_PROVIDER,
    WEBHOOK_FIELD_MANAGER,
)
from jangar.api.refs import AGENTS, IMPLEMENTATIONSOURCES, IMPLEMENTATIONSPECS
from jangar.conditions import format_time, set_condition
from jangar.runtime import Client, ConflictError, JsonObject, NotFoundError, ResourceRef
from jangar.runtime.resources import SECRETS
from jangar.scheduler.naming import label_value
from jangar.services.idempotency import Submitted
from jangar.services.intake.agent_policy import REASON as PROVIDER_REFUSED
from jangar.services.intake.agent_policy import ProviderNotAllowed, provider_refusal
from jangar.services.intake.events import (
    PROVIDERS,
    IssueEvent,
    PayloadError,
    Provider,
    delivery_id,
    idempotency_key,
    is_issue_event,
    matches_scope,
    parse_event,
    spec_name,
)
from jangar.services.intake.signature import verify
from jangar.services.submission import Submission
from jangar.settings import Settings

__all__ = ["DEDUPE_SECONDS", "LINEAR_WINDOW_SECONDS", "IntakeResponse", "WebhookIntake", "WorkItem"]

log = structlog.get_logger("jangar.services.intake")

DEDUPE_SECONDS = 3600.0
LINEAR_WINDOW_SECONDS = 60.0
_STATUS_RETRIES = 5

SubmitRun = Callable[[Submission], Awaitable[Submitted]]


@dataclass(frozen=True)
class IntakeResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class WorkItem:
    namespace: str
    source: str
    event: IssueEvent
    key: str
    """The idempotency key (`<provider>:<deliveryId>` ...)."""
    delivery_id: str | None
    received_at: datetime
    attempt: int = 1

    @property
    def queue_key(self) -> str:
        return f"{self.namespace}/{self.source}:{self.key}"


@dataclass
class _Metrics:
    deliveries: Counter
    processed: Counter
    depth: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None) -> _Metrics:
        return cls(
            Counter(
                "jangar_webhook_deliveries_total",
                "Webhook requests by provider and answer (queued, deduped, ignored, unauthorized, ...).",
                ["provider", "outcome"],
                registry=registry,
            ),
            Counter(
                "jangar_webhook_processed_total",
                "Queued webhook items processed, by outcome (synced, retrying, failed, dropped).",
                ["provider", "outcome"],
                registry=registry,
            ),
            Gauge("jangar_webhook_queue_depth", "Webhook items waiting to be processed.", registry=registry),
        )


def _err(status: int, message: str, **extra: Any) -> IntakeResponse:
    return IntakeResponse(status, {"ok": False, "error": message, **extra})


def _decode(secret: JsonObject, key: str) -> bytes | None:
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return str(string_data[key]).encode()
    value = (secret.get("data") or {}).get(key)
    if value is None:
        return None
    try:
        return base64.b64decode(value)
    except (ValueError, TypeError):
        return None


@dataclass
class WebhookIntake:
    """One per process; `start()` runs the worker (`need_leader_election = False`: every replica serves HTTP)."""

    client: Client
    settings: Settings
    submit_run: SubmitRun | None = None
    registry: CollectorRegistry | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    need_leader_election: bool = False
    _queue: deque[WorkItem] = field(default_factory=deque, init=False)
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _worker: asyncio.Task[None] | None = field(default=None, init=False)
    _timers: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _busy: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.metrics = _Metrics.create(self.registry if self.registry is not None else CollectorRegistry())

    # -- the request side ------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.settings.webhook.queue_size

    def _namespaces(self) -> list[str | None]:
        scope = self.settings.agents_controller
        return [None] if scope.all_namespaces else list(scope.namespaces)

    async def _sources(self, provider: Provider) -> list[JsonObject]:
        found: list[JsonObject] = []
        for ns in self._namespaces():
            listed = await self.client.list(IMPLEMENTATIONSOURCES, ns)
            found.extend(s for s in listed.items if (s.get("spec") or {}).get("provider") == provider)
        return found

    async def _secret_value(self, source: JsonObject) -> bytes | None:
        spec = source.get("spec") or {}
        if not (spec.get("webhook") or {}).get("enabled"):
            return None
        ref = (spec.get("auth") or {}).get("secretRef") or {}
        if not ref.get("name"):
            return None
        try:
            secret = await self.client.get(SECRETS, str(ref["name"]), source["metadata"]["namespace"])
        except NotFoundError:
            return None
        return _decode(secret, str(ref.get("key") or "token"))

    def _seen_recently(self, key: str, now: float) -> bool:
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= DEDUPE_SECONDS:
                break
            self._seen.pop(oldest)
        return key in self._seen

    async def receive(self, provider: str, headers: Mapping[str, str], body: bytes) -> IntakeResponse:
        """Answer one webhook request (nothing is written to the API server before the answer)."""
        if provider not in PROVIDERS:
            return _err(404, f"unknown webhook provider {provider!r}")
        prov: Provider = provider
        outcome = self.metrics.deliveries
        if not body:
            outcome.labels(prov, "invalid").inc()
            return _err(400, "empty body")
        try:
            payload = json.loads(body)
        except ValueError:
            outcome.labels(prov, "invalid").inc()
            return _err(400, "invalid JSON")
        if not is_issue_event(prov, headers):
            outcome.labels(prov, "ignored").inc()
            return IntakeResponse(200, {"ok": True, "ignored": True})
        now = self.clock()
        if prov == "linear" and isinstance(payload, dict) and payload.get("webhookTimestamp") is not None:
            stamp = payload.get("webhookTimestamp")
            if not isinstance(stamp, int | float) or isinstance(stamp, bool):
                outcome.labels(prov, "invalid").inc()
                return _err(400, "webhookTimestamp must be a number of milliseconds")
            if abs(now.timestamp() - float(stamp) / 1000.0) > LINEAR_WINDOW_SECONDS:
                outcome.labels(prov, "stale").inc()
                return _err(400, f"webhookTimestamp is more than {LINEAR_WINDOW_SECONDS:.0f} s from now")
        candidates = await self._sources(prov)
        if not candidates:
            outcome.labels(prov, "no_source").inc()
            return _err(404, f"no ImplementationSource for provider {prov}")
        verified: list[JsonObject] = []
        for source in candidates:
            secret = await self._secret_value(source)
            if secret is not None and verify(prov, secret, body, headers):
                verified.append(source)
        if not verified:
            outcome.labels(prov, "unauthorized").inc()
            return _err(401, "signature verification failed")
        try:
            event = parse_event(prov, payload)
        except PayloadError as exc:
            outcome.labels(prov, "invalid").inc()
            for source in verified:
                await self._record_invalid(source, str(exc))
            return _err(400, f"invalid payload: {exc}")
        matched = [s for s in verified if matches_scope((s.get("spec") or {}).get("scope"), event)]
        if not matched:
            outcome.labels(prov, "no_match").inc()
            return _err(404, f"no ImplementationSource scope matches {event.external_id}")
        delivery = delivery_id(prov, headers, event)
        key = idempotency_key(prov, delivery, event)
        queued = deduped = 0
        mono = now.timestamp()
        items = [
            WorkItem(s["metadata"]["namespace"], s["metadata"]["name"], event, key, delivery, now)
            for s in matched
        ]
        fresh = [item for item in items if not self._seen_recently(item.queue_key, mono)]
        deduped = len(items) - len(fresh)
        if len(self._queue) + len(fresh) > self.capacity:
            outcome.labels(prov, "queue_full").inc()
            return IntakeResponse(
                503, {"ok": False, "error": "Webhook queue full", "queued": 0, "deduped": deduped}
            )
        for item in fresh:
            self._seen[item.queue_key] = mono
            self._enqueue(item)
            queued += 1
        outcome.labels(prov, "queued").inc(queued)
        outcome.labels(prov, "deduped").inc(deduped)
        return IntakeResponse(200, {"ok": True, "queued": queued, "deduped": deduped, "idempotencyKey": key})

    def _enqueue(self, item: WorkItem) -> bool:
        if len(self._queue) >= self.capacity:
            return False
        self._queue.append(item)
        self.metrics.depth.set(len(self._queue))
        self._wake.set()
        return True

    # -- the worker ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="jangar-webhook-intake")

    async def stop(self, timeout: float) -> None:
        for task in (*self._timers, *([self._worker] if self._worker else [])):
            task.cancel()
        for task in (*self._timers, *([self._worker] if self._worker else [])):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._timers.clear()
        if self._queue:
            log.warning("webhook.unprocessed_on_shutdown", pending=len(self._queue))

    def idle(self) -> bool:
        """Nothing queued, being processed or waiting for a retry (tests)."""
        return not self._queue and not self._busy and not self._timers

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            item = self._queue.popleft()
            self.metrics.depth.set(len(self._queue))
            self._busy = True
            try:
                await self._process(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # never kill the worker
                log.exception("webhook.process_crashed", key=item.queue_key)
            finally:
                self._busy = False

    def _retry_delay(self, attempt: int) -> float:
        hook = self.settings.webhook
        return float(min(hook.retry_base_delay_seconds * 2 ** (attempt - 1), hook.retry_max_delay_seconds))

    async def _process(self, item: WorkItem) -> None:
        try:
            source = await self.client.get(IMPLEMENTATIONSOURCES, item.source, item.namespace)
        except NotFoundError:
            self._seen.pop(item.queue_key, None)
            log.info("webhook.source_gone", key=item.queue_key)
            return
        name = None
        try:
            name = await self._apply_spec(item)
            run = await self._maybe_start_run(source, item, name)
        except ProviderNotAllowed as exc:  # issue 13 item 3: a policy answer, not worth a retry
            self._seen.pop(item.queue_key, None)
            self.metrics.processed.labels(item.event.provider, "refused").inc()
            log.info("webhook.refused", key=item.queue_key, reason=PROVIDER_REFUSED, error=str(exc))
            await self._record_source(item, "failed", spec=name, error=str(exc), reason=PROVIDER_REFUSED)
            return
        except Exception as exc:
            await self._failed(item, exc)
            return
        self.metrics.processed.labels(item.event.provider, "synced").inc()
        await self._record_source(item, "synced", spec=name, run=run)
        log.info("webhook.synced", key=item.queue_key, spec=name, run=run, attempts=item.attempt)

    async def _failed(self, item: WorkItem, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:1024]
        prov = item.event.provider
        if item.attempt >= self.settings.webhook.retry_max_attempts:
            self._seen.pop(item.queue_key, None)  # a redelivery may try again
            self.metrics.processed.labels(prov, "failed").inc()
            log.warning("webhook.failed", key=item.queue_key, attempts=item.attempt, error=error)
            await self._record_source(item, "failed", error=error, reason="WebhookFailed")
            return
        self.metrics.processed.labels(prov, "retrying").inc()
        delay = self._retry_delay(item.attempt)
        log.info("webhook.retrying", key=item.queue_key, attempt=item.attempt, in_seconds=delay, error=error)
        await self._record_source(item, "retrying", error=error, reason="WebhookFailed")
        task = asyncio.create_task(self._retry_after(replace(item, attempt=item.attempt + 1), delay))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _retry_after(self, item: WorkItem, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._enqueue(item):  # a retry bypasses de-duplication, not the bound
            self._seen.pop(item.queue_key, None)
            self.metrics.processed.labels(item.event.provider, "dropped").inc()
            await self._record_source(
                item, "failed", error="the webhook queue is full", reason="WebhookRetryDropped"
            )

    # -- writes ----------------------------------------------------------------------------------

    async def _apply_spec(self, item: WorkItem) -> str:
        event = item.event
        name = spec_name(event)
        source: dict[str, Any] = {"provider": event.provider, "externalId": event.external_id}
        if event.url:
            source["url"] = event.url
        spec: dict[str, Any] = {"source": source, "summary": event.summary, "text": event.text}
        if event.labels:
            spec["labels"] = list(event.labels)
        body = {
            "apiVersion": IMPLEMENTATIONSPECS.api_version,
            "kind": IMPLEMENTATIONSPECS.kind,
            "metadata": {
                "name": name,
                "namespace": item.namespace,
                "labels": {
                    LABEL_SOURCE_PROVIDER: event.provider,
                    LABEL_IMPLEMENTATION_SOURCE: label_value(item.source),
                },
            },
            "spec": spec,
        }
        await self.client.apply(IMPLEMENTATIONSPECS, body, field_manager=WEBHOOK_FIELD_MANAGER, force=True)
        now = self.clock()

        def status(current: dict[str, Any], generation: int | None) -> dict[str, Any]:
            current["syncedAt"] = format_time(now)
            if event.source_version:
                current["sourceVersion"] = event.source_version
            current["conditions"] = set_condition(
                current.get("conditions"),
                "Synced",
                True,
                "Synced",
                f"synced from {event.external_id} ({item.key})",
                now=now,
                observed_generation=generation,
            )
            return current

        await self._update_status(IMPLEMENTATIONSPECS, item.namespace, name, status)
        return name

    async def _maybe_start_run(self, source: JsonObject, item: WorkItem, spec: str) -> str | None:
        template = (source.get("spec") or {}).get("runTemplate") or {}
        if not template.get("enabled"):
            return None
        if self.submit_run is None:
            raise RuntimeError("runTemplate.enabled but this process cannot submit runs")
        agent = (template.get("agentRef") or {}).get("name")
        if not agent:
            raise ValueError("runTemplate.agentRef.name is required when runTemplate.enabled is true")
        event = item.event
        with contextlib.suppress(NotFoundError):  # a missing Agent is the run's problem (MissingAgent)
            refusal = provider_refusal(
                await self.client.get(AGENTS, str(agent), item.namespace), event.provider
            )
            if refusal:
                raise ProviderNotAllowed(refusal)
        params = {str(k): str(v) for k, v in (template.get("parameters") or {}).items()}
        facts = {
            "repository": event.repository,
            "issueNumber": str(event.number) if event.number is not None else None,
            "externalId": event.external_id,
            "url": event.url,
        }
        for key, value in facts.items():
            if value is not None:
                params.setdefault(key, value)
        submission = Submission(
            agent=str(agent),
            namespace=item.namespace,
            implementation_spec=spec,
            runtime=str(template.get("runtime") or "job"),
            parameters=params,
            idempotency_key=f"{item.namespace}/{item.source}:{item.key}",
            secrets=[str(s) for s in template.get("secrets") or ()],
            labels={LABEL_IMPLEMENTATION_SOURCE: label_value(item.source)},
            memory_ref=(template.get("memoryRef") or {}).get("name"),
            vcs_ref=(template.get("vcsRef") or {}).get("name"),
        )
        submitted = await self.submit_run(submission)
        return str(submitted.run["metadata"]["name"])

    async def _update_status(
        self,
        ref: ResourceRef,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any], int | None], dict[str, Any]],
    ) -> None:
        """GET, change the fields the intake owns, PUT with the resourceVersion; retried on a conflict."""
        for attempt in range(_STATUS_RETRIES):
            obj = await self.client.get(ref, name, namespace)
            generation = (obj.get("metadata") or {}).get("generation")
            obj["status"] = change(dict(obj.get("status") or {}), generation)
            try:
                await self.client.update_status(ref, obj, field_manager=WEBHOOK_FIELD_MANAGER)
                return
            except ConflictError:
                if attempt == _STATUS_RETRIES - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    async def _record_source(
        self,
        item: WorkItem,
        outcome: str,
        *,
        spec: str | None = None,
        run: str | None = None,
        error: str | None = None,
        reason: str | None = None,
    ) -> None:
        now = self.clock()
        event = item.event
        webhook: dict[str, Any] = {
            "idempotencyKey": item.key,
            "provider": event.provider,
            "externalId": event.external_id,
            "receivedAt": format_time(item.received_at),
            "processedAt": format_time(now),
            "attempts": item.attempt,
            "status": outcome,
        }
        if item.delivery_id:
            webhook["deliveryId"] = item.delivery_id
        if event.source_version:
            webhook["sourceVersion"] = event.source_version
        if error:
            webhook["error"] = error

        def status(current: dict[str, Any], generation: int | None) -> dict[str, Any]:
            current["lastWebhook"] = webhook
            conds = current.get("conditions")
            if outcome == "synced":
                current["lastSyncedAt"] = format_time(now)
                message = f"{event.external_id} → ImplementationSpec {spec}" + (
                    f", AgentRun {run}" if run else ""
                )
                conds = set_condition(conds, "Synced", True, "WebhookSynced", message, now=now)
                conds = set_condition(conds, "Error", False, "NoError", "", now=now)
            else:
                conds = set_condition(conds, "Error", True, reason or "WebhookFailed", error or "", now=now)
            current["conditions"] = conds
            return current

        try:
            await self._update_status(IMPLEMENTATIONSOURCES, item.namespace, item.source, status)
        except Exception as exc:  # the bookkeeping must not turn a synced spec into a retry
            log.warning("webhook.source_status_failed", key=item.queue_key, error=str(exc))

    async def _record_invalid(self, source: JsonObject, message: str) -> None:
        now = self.clock()

        def status(current: dict[str, Any], generation: int | None) -> dict[str, Any]:
            current["conditions"] = set_condition(
                current.get("conditions"), "Error", True, "InvalidPayload", message, now=now
            )
            return current

        meta = source["metadata"]
        try:
            await self._update_status(IMPLEMENTATIONSOURCES, meta["namespace"], meta["name"], status)
        except Exception as exc:
            log.warning("webhook.source_status_failed", source=meta["name"], error=str(exc))
