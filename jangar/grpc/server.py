"""`GrpcRunnable`: the agentctl gRPC server as a manager runnable, on every replica.

It needs no leadership: every method is a read, a write through the API server, or a watch, all safe on
any replica; the controller (leader) acts on what was written. Transport is plaintext like the reference
(put it behind a mesh or keep it on the cluster network). Every call needs a bearer token: a Kubernetes
token (TokenReview) or the shared `JANGAR_GRPC_TOKEN` (constant-time match, the identity
`jangar:grpc-shared-token`), and every method asks a SubjectAccessReview for its permission
(docs/security.md).
"""

from __future__ import annotations

import grpc
import structlog
from prometheus_client import CollectorRegistry

from jangar.access import Access
from jangar.grpc.service import AgentctlService
from jangar.runtime import CacheReader, Client
from jangar.services import RunsService
from jangar.settings import Settings

log = structlog.get_logger("jangar.grpc")

SERVER_OPTIONS = (
    # Ping idle connections: a vanished client (laptop asleep, pod gone) otherwise keeps its status stream,
    # and with it an API-server watch, open for ever. Pinging clients is always allowed, unlike the reverse.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
)
STOP_GRACE_SECONDS = 5.0
"""Unary calls finish in well under this; status and log streams are open-ended and are cut after it."""


class GrpcRunnable:
    """Serves `proompteng.jangar.v1.AgentctlService`, also under its 0.9.29 name
    `proompteng.agents.v1.AgentctlService`, on `settings.grpc.bind_address` while the manager runs."""

    need_leader_election = False

    def __init__(
        self,
        settings: Settings,
        client: Client,
        cache: CacheReader,
        registry: CollectorRegistry | None = None,
        *,
        runs: RunsService | None = None,
        access: Access | None = None,
    ) -> None:
        self.settings = settings
        self.service = AgentctlService(settings, client, cache, registry, runs, access=access)
        self.address = settings.grpc.bind_address
        self.port: int | None = None
        """The bound port once started (useful with port 0)."""
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        server.add_generic_rpc_handlers(self.service.handlers())
        port = server.add_insecure_port(self.address)
        if port == 0:
            raise RuntimeError(f"gRPC: cannot listen on {self.address}")
        await server.start()
        self._server = server
        self.port = port
        log.info(
            "grpc.serving",
            address=self.address,
            port=port,
            shared_token=bool(self.settings.grpc.token),
            token_review=self.settings.auth.token_review,
        )

    async def stop(self, timeout: float) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        await server.stop(grace=min(timeout, STOP_GRACE_SECONDS))
        log.info("grpc.stopped")
