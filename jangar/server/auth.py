"""Bearer-token authentication of the HTTP surface (an aiohttp middleware) and the 401/403/503 answers.

Every route needs `Authorization: Bearer <token>` except the probes and metrics (`/health`, `/ready`,
`/healthz`, `/readyz`, the metrics path: they reveal nothing a caller could act on and kubelet/Prometheus
call them without credentials) and the ImplementationSource webhooks (authenticated by the HMAC signature
of their body). The middleware only authenticates; each handler then asks `Access.require` for the
permission its action needs (docs/security.md lists them), with the namespace the service resolves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from jangar.access import (
    Access,
    AccessError,
    AccessUnavailable,
    Attributes,
    PermissionDenied,
    Unauthenticated,
    UserInfo,
    bearer_token,
)
from jangar.server.webhooks_api import WEBHOOK_PATH

__all__ = [
    "OPEN_PATHS",
    "OPEN_PREFIXES",
    "USER_KEY",
    "access_error_response",
    "auth_middleware",
    "caller",
    "require",
]

USER_KEY = web.RequestKey("jangar.user", UserInfo)
ACCESS_KEY = web.RequestKey("jangar.access", Access)
OPEN_PATHS = frozenset({"/health", "/ready", "/healthz", "/readyz", "/metrics"})
OPEN_PREFIXES = (WEBHOOK_PATH.split("{", 1)[0],)
CHALLENGE = 'Bearer realm="jangar"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def access_error_response(exc: AccessError) -> web.Response:
    if isinstance(exc, Unauthenticated):
        return web.json_response(
            {"error": exc.message, "reason": "Unauthorized"},
            status=401,
            headers={"WWW-Authenticate": CHALLENGE},
        )
    if isinstance(exc, PermissionDenied):
        return web.json_response({"error": exc.message, "reason": "Forbidden"}, status=403)
    assert isinstance(exc, AccessUnavailable)
    return web.json_response({"error": exc.message, "reason": "AuthUnavailable"}, status=503)


def auth_middleware(
    access: Access, open_paths: Iterable[str] = ()
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Authenticate every request outside `OPEN_PATHS` (plus `open_paths`) and the webhook prefix; the
    identity is `request[USER_KEY]` for the handlers."""
    opened = OPEN_PATHS | frozenset(open_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[ACCESS_KEY] = access
        if request.path in opened or request.path.startswith(OPEN_PREFIXES):
            return await handler(request)
        try:
            request[USER_KEY] = await access.authenticate(bearer_token(request.headers.get("Authorization")))
        except AccessError as exc:
            return access_error_response(exc)
        return await handler(request)

    return middleware


def caller(request: web.Request) -> UserInfo:
    """The authenticated identity (`Unauthenticated` when the middleware did not run: never open)."""
    user = request.get(USER_KEY)
    if not isinstance(user, UserInfo):
        raise Unauthenticated()
    return user


async def require(request: web.Request, *attributes: Attributes) -> UserInfo:
    """The caller, once every permission of `attributes` is granted (`PermissionDenied` otherwise)."""
    user = caller(request)
    access = request.get(ACCESS_KEY)
    if not isinstance(access, Access):
        raise Unauthenticated()
    await access.require(user, *attributes)
    return user
