"""The composition root of the `jangar serve` process.

It reads settings, builds one Kubernetes client, one runtime Manager (caches, controllers, leader election,
probes, metrics), the run recorder and the HTTP API, and runs them until SIGTERM. Everything else in jangar
is built to be wired here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from jangar.access import KubeAccess
from jangar.admission import AdmissionLedger
from jangar.api.refs import AGENTRUNS
from jangar.audit import SinkCloser, build_sink
from jangar.runtime import (
    CacheOptions,
    Client,
    LeaderElectionOptions,
    LeaderLost,
    Manager,
    ManagerOptions,
    RunnableFailed,
    configure_logging,
)
from jangar.runtime.leaderelection import default_identity
from jangar.server.agentruns_api import AgentRunsApi
from jangar.server.auth import auth_middleware
from jangar.server.orchestration_api import OrchestrationRunsApi
from jangar.server.probes import mount_probes
from jangar.server.webhooks_api import WebhooksApi
from jangar.services import OrchestrationService, RunsService, ToolRunService
from jangar.services.intake import WebhookIntake
from jangar.settings import Settings
from jangar.storage import MigrationMode, RunRecorder, migrate_on_start, parse_migration_mode

log = structlog.get_logger(__name__)

FIELD_MANAGER = "jangar"
MIGRATION_RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass
class Options:
    kubeconfig: str | None = None
    bind_address: str | None = None
    """Overrides `:<JANGAR_HTTP_PORT>`; `127.0.0.1:0` picks a free port (tests)."""
    controllers: bool = True


def leader_election_options(settings: Settings) -> LeaderElectionOptions | None:
    le = settings.leader_election
    if not le.enabled:
        return None
    namespace = le.namespace or settings.pod_namespace
    if namespace is None:
        scoped = [ns for ns in settings.agents_controller.namespaces if ns != "*"]
        namespace = scoped[0] if scoped else "default"
    return LeaderElectionOptions(
        name=le.lease_name,
        namespace=namespace,
        identity=settings.pod_name or default_identity(),
        lease_duration=le.lease_duration_seconds,
        renew_deadline=le.renew_deadline_seconds,
        retry_period=le.retry_period_seconds,
    )


def cache_options(settings: Settings) -> CacheOptions:
    namespaces = settings.agents_controller.namespaces
    return CacheOptions(namespaces=None if "*" in namespaces else list(namespaces))


class RecorderRunnable:
    """Migrate (when `JANGAR_MIGRATIONS=auto`), then start the recorder's writer.

    Until migrations succeed the recorder only buffers (at most `JANGAR_RECORDS_BUFFER_MAX` records, then it
    refuses offers and the controllers make them again later): a database that is down at start delays
    records, it does not stop the controller and loses nothing. With `JANGAR_MIGRATIONS=skip` nobody
    creates the tables for us, so the writer checks they exist; while one is missing, readiness fails
    (`schema_check`) naming the variable and the tables, and nothing is buffered.
    """

    need_leader_election = False

    def __init__(self, recorder: RunRecorder, database_url: str, migrations: str) -> None:
        self.recorder = recorder
        self.database_url = database_url
        self.migrations = migrations
        self._task: asyncio.Task[None] | None = None

    def schema_check(self) -> bool:
        """Readiness: the record tables exist (raises naming `JANGAR_MIGRATIONS` and the missing tables)."""
        missing = self.recorder.missing_tables
        if missing:
            raise SchemaMissing(
                f"JANGAR_MIGRATIONS={self.migrations} and the run-record table(s) {', '.join(missing)} "
                "do not exist: apply the migrations (set JANGAR_MIGRATIONS=auto, or run them with alembic, "
                "see docs/storage.md); records are not buffered until then"
            )
        return True

    async def _migrate_then_start(self) -> None:
        if parse_migration_mode({"JANGAR_MIGRATIONS": self.migrations}) is MigrationMode.SKIP:
            await self.recorder.start(check_schema=True)
            return
        attempt = 0
        while True:
            try:
                await migrate_on_start(self.database_url, {"JANGAR_MIGRATIONS": self.migrations})
                break
            except Exception as err:
                delay = MIGRATION_RETRY_SECONDS[min(attempt, len(MIGRATION_RETRY_SECONDS) - 1)]
                log.warning("storage.migrate_failed", error=type(err).__name__, retry_in=delay)
                attempt += 1
                await asyncio.sleep(delay)
        await self.recorder.start()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._migrate_then_start(), name="jangar-migrate")

    async def stop(self, timeout: float) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        unwritten = await self.recorder.close(timeout=max(1.0, timeout))
        if unwritten:
            log.warning("storage.unwritten_on_shutdown", pending=unwritten)


class SchemaMissing(RuntimeError):
    """The run-record tables are missing and migrations are skipped (the readiness failure's reason)."""

    def __repr__(self) -> str:
        return str(self)


async def build_manager(
    settings: Settings, client: Client, options: Options
) -> tuple[Manager, RunRecorder | None]:
    manager = Manager(
        client,
        ManagerOptions(
            bind_address=options.bind_address or f":{settings.http_port}",
            leader_election=leader_election_options(settings),
            cache=cache_options(settings),
            reporting_instance=settings.pod_name,
            # JANGAR_PROMETHEUS_METRICS_ENABLED=false: no exposition at all (404), see docs/settings.md
            metrics_path=settings.metrics_path if settings.metrics_enabled else None,
            metrics_twin_names=settings.metrics_agents_names,
        ),
    )
    recorder: RunRecorder | None = None
    details: dict[str, Any] = {"version": settings.version}
    if settings.database.url:
        recorder = RunRecorder(
            settings.database.url,
            registry=manager.metrics.registry,
            max_pending=settings.database.records_buffer_max,
        )
        recording = RecorderRunnable(recorder, settings.database.url, settings.database.migrations)
        manager.add(recording, False)
        manager.add_readyz_check("database-schema", recording.schema_check)
        details["database"] = lambda: recorder.status().as_dict() if recorder else None
    else:
        details["database"] = {"configured": False}
    mount_probes(manager, details)
    audit = build_sink(
        settings.audit, manager.metrics.registry
    )  # issue 13: JANGAR_AUDIT_SINK_* (docs/audit.md)
    manager.add(SinkCloser(audit), need_leader_election=False)
    ledger: AdmissionLedger | None = None
    if options.controllers and settings.agents_controller.enabled:
        from jangar.controllers.setup import ControllerDeps, install

        installed = install(
            manager,
            ControllerDeps(
                settings=settings,
                client=manager.client,
                recorder=recorder,
                webhooks_served=manager.options.bind_address is not None,
                audit=audit,
            ),
        )
        ledger = installed.gate.ledger  # the surfaces' early refusal sees the controller's reservations
    manager.cache.informer(AGENTRUNS)  # the early queue refusal reads runs from the cache, also in split mode
    runs = RunsService(manager.client, manager.cache, settings, ledger=ledger, audit=audit)
    # issue 12: every route but the probes, metrics and webhooks needs a bearer token (docs/security.md)
    access = KubeAccess.from_settings(manager.client, settings)
    if settings.cors_allowed_origins:  # issue 13 item 2: before auth (a preflight carries no token)
        from jangar.server.cors import cors_middleware

        manager.app.middlewares.append(cors_middleware(settings.cors_allowed_origins))
    manager.app.middlewares.append(auth_middleware(access, (settings.metrics_path,)))
    manager.app.router.add_routes(AgentRunsApi(runs).routes())
    orchestrations = OrchestrationService.from_settings(manager.client, manager.cache, settings)
    toolruns = ToolRunService.from_settings(manager.client, manager.cache, settings)
    manager.app.router.add_routes(OrchestrationRunsApi(orchestrations, toolruns).routes())
    # issue 11: ImplementationSource webhooks (GitHub, Linear) → ImplementationSpecs (docs/intake.md)
    intake = WebhookIntake(
        manager.client, settings, submit_run=runs.submit, registry=manager.metrics.registry
    )
    manager.add(intake, need_leader_election=False)
    manager.app.router.add_routes(WebhooksApi(intake).routes())
    # issue 11: POST /v1/memory-queries and /v1/memory-records over postgres Memories (docs/memory.md)
    from jangar.server.memory_api import MemoryApi
    from jangar.services.memory import MemoryService

    memories = MemoryService.from_settings(manager.client, settings, registry=manager.metrics.registry)
    manager.app.router.add_routes(MemoryApi(memories).routes())
    if settings.grpc.enabled:
        from jangar.grpc.server import GrpcRunnable

        manager.add(
            GrpcRunnable(
                settings, manager.client, manager.cache, manager.metrics.registry, runs=runs, access=access
            ),
            False,
        )
    return manager, recorder


async def serve(settings: Settings, options: Options) -> int:
    configure_logging(level=settings.log_level)
    client = await Client.from_kubeconfig(options.kubeconfig, field_manager=FIELD_MANAGER)
    try:
        manager, _ = await build_manager(settings, client, options)
        manager.install_signal_handlers()
        log.info("jangar.starting", namespaces=list(settings.agents_controller.namespaces))
        try:
            await manager.start()
        except LeaderLost:
            log.error("jangar.leadership_lost")
            return 1
        except RunnableFailed:
            return 1  # the manager logged which runnable failed and why
        return 0
    finally:
        await client.close()
