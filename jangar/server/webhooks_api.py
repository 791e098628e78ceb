"""`POST /api/agents/implementation-sources/webhooks/{provider}`: GitHub and Linear issue webhooks.

A protocol adapter over `jangar.services.intake.WebhookIntake` (verification, matching, the queue). The
route is unauthenticated by design: the HMAC signature of the body under the ImplementationSource's secret
is the authentication, and nothing is written for a request that no source verifies (401). GET → 405.
"""

from __future__ import annotations

from aiohttp import web

from jangar.services.intake import WebhookIntake

__all__ = ["WEBHOOK_PATH", "WebhooksApi"]

WEBHOOK_PATH = "/api/agents/implementation-sources/webhooks/{provider}"


class WebhooksApi:
    def __init__(self, intake: WebhookIntake) -> None:
        self.intake = intake

    def routes(self) -> list[web.RouteDef]:
        return [web.post(WEBHOOK_PATH, self.receive), web.get(WEBHOOK_PATH, self.not_allowed)]

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer = await self.intake.receive(request.match_info["provider"], headers, body)
        return web.json_response(answer.body, status=answer.status)

    async def not_allowed(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error": "use POST"}, status=405, headers={"Allow": "POST"})
