"""CORS for the HTTP API (issue 13 item 2; chart value `cors.allowedOrigins`, env JANGAR_CORS_ALLOWED_ORIGINS).

A browser app on another origin may call the API only when its origin is listed. The middleware sits in
front of authentication because a preflight (`OPTIONS` with `Access-Control-Request-Method`) never carries
the bearer token: it is answered here, 204 with the allowed method and headers for a listed origin, 403
for any other. Actual requests go on to the handlers; the response (a 401 included, so the page can read
why it was refused) echoes the request's origin only when it is listed, never a wildcard the caller did not
configure. No list (the default) means the middleware is not installed at all. Credentials (cookies) are
not allowed: the API authenticates with bearer tokens, which a page sends explicitly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

__all__ = ["ALLOWED_METHODS", "MAX_AGE_SECONDS", "cors_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
MAX_AGE_SECONDS = 600
_DEFAULT_HEADERS = "Authorization, Content-Type"


def cors_middleware(allowed_origins: Iterable[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware answering preflights and adding the CORS headers for `allowed_origins` (`*` = any;
    `scheme://*.domain` = its subdomains)."""
    allowed = frozenset(allowed_origins)
    any_origin = "*" in allowed
    # "https://*.example.com" -> ("https://", ".example.com"): any subdomain, never example.com itself
    wildcards = tuple(
        (entry.split("*.", 1)[0], "." + entry.split("*.", 1)[1]) for entry in allowed if "://*." in entry
    )

    def permitted(origin: str | None) -> bool:
        if origin is None:
            return False
        if any_origin or origin in allowed:
            return True
        for scheme, suffix in wildcards:
            host = origin.removeprefix(scheme)
            if origin.startswith(scheme) and host.endswith(suffix) and len(host) > len(suffix):
                return "/" not in host
        return False

    def decorate(response: web.StreamResponse, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
        response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
        if not any_origin:
            response.headers.add("Vary", "Origin")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not permitted(origin):
                return web.json_response(
                    {
                        "error": f"origin {origin!r} is not allowed (cors.allowedOrigins)",
                        "reason": "CorsDenied",
                    },
                    status=403,
                )
            assert origin is not None
            preflight = web.Response(status=204)
            decorate(preflight, origin)
            preflight.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            preflight.headers["Access-Control-Allow-Headers"] = request.headers.get(
                "Access-Control-Request-Headers", _DEFAULT_HEADERS
            )
            preflight.headers["Access-Control-Max-Age"] = str(MAX_AGE_SECONDS)
            return preflight
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if permitted(origin):
                assert origin is not None
                decorate(exc, origin)
            raise
        if permitted(origin) and not response.prepared:
            assert origin is not None
            decorate(response, origin)
        return response

    return middleware
