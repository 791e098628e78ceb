"""Aggregated health endpoints, shaped like controller-runtime's ``pkg/healthz``.

``/healthz`` and ``/readyz`` run every named check; ``/readyz/<name>`` runs one;
``?exclude=<name>`` skips checks and ``?verbose`` lists results (failures always do).
A check is a callable returning ``True``/``None`` for healthy, ``False`` or raising for
unhealthy; it may be async.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from aiohttp import web

Check = Callable[[], "bool | Awaitable[bool | None] | None"]


def ping() -> bool:
    """The trivial check: the process serves HTTP."""
    return True


class Checks:
    """A named set of checks served under one path."""

    def __init__(self, path: str) -> None:
        self.path = path.rstrip("/")
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        if not name or "/" in name:
            raise ValueError(f"invalid check name {name!r}")
        if name in self._checks:
            raise ValueError(f"check {name!r} already registered on {self.path}")
        self._checks[name] = check

    async def run(
        self, only: str | None = None, exclude: set[str] | frozenset[str] = frozenset()
    ) -> list[tuple[str, bool, str]]:
        results = []
        for name, check in self._checks.items():
            if (only is not None and name != only) or name in exclude:
                continue
            try:
                outcome = check()
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                ok, reason = outcome is not False, ""
            except Exception as exc:
                ok, reason = False, repr(exc)
            results.append((name, ok, reason))
        return results

    async def handle(self, request: web.Request) -> web.Response:
        only = request.match_info.get("name")
        if only is not None and only not in self._checks:
            return web.Response(status=404, text=f"no check named {only}\n")
        exclude = set(request.query.getall("exclude", []))
        results = await self.run(only, exclude)
        healthy = all(ok for _, ok, _ in results)
        verbose = "verbose" in request.query or not healthy
        if not verbose:
            return web.Response(text="ok")
        lines = [
            f"[{'+' if ok else '-'}]{name} {'ok' if ok else 'failed: ' + (reason or 'reason withheld')}"
            for name, ok, reason in results
        ]
        lines.append(f"{self.path.strip('/')} check {'passed' if healthy else 'failed'}")
        return web.Response(status=200 if healthy else 500, text="\n".join(lines) + "\n")

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.path, self.handle), web.get(self.path + "/{name}", self.handle)]
