"""`/health` and `/ready`: the reference's probe paths, answered by the runtime's named checks.

Liveness means the process and its informers are working; readiness means caches are synced. A database
outage is reported in the readiness details (and metrics) but does not make the pod unready: records are
buffered and written later, and taking the pod out of its Service would only block submissions.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from jangar.runtime import Manager
from jangar.runtime.healthz import Checks


def _json_probe(checks: Checks, details: dict[str, Any]) -> Any:
    async def handle(request: web.Request) -> web.Response:
        results = await checks.run()
        ok = all(passed for _, passed, _ in results)
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "checks": {
                name: (reason or "ok") if passed else f"failed: {reason}" for name, passed, reason in results
            },
        }
        body.update({k: v() if callable(v) else v for k, v in details.items()})
        return web.json_response(body, status=200 if ok else 503)

    return handle


def mount_probes(manager: Manager, details: dict[str, Any]) -> None:
    """Add `/health` and `/ready` (JSON) next to the runtime's `/healthz` and `/readyz`."""
    manager.app.router.add_get("/health", _json_probe(manager.healthz, details))
    manager.app.router.add_get("/ready", _json_probe(manager.readyz, details))
