"""A small in-memory Kubernetes API server for fault injection in runtime tests.

It implements just enough of the REST protocol for any resource path (core and
``/apis/{group}/{version}``): get, paginated list, watch with bookmarks, create, PUT with
resourceVersion conflicts, merge/apply patches, delete, and the ``status`` subresource. It does
no validation or defaulting; the real API server tests cover those.

Fault injection: :meth:`FakeApiServer.compact` (watches from older RVs get an in-stream 410),
:meth:`FakeApiServer.stall_watches` (open streams go silent while the connection stays up),
:meth:`FakeApiServer.drop_watches` (close every stream), :meth:`FakeApiServer.fail_next`
(answer the next N requests with a status), and :meth:`FakeApiServer.bookmark`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes_asyncio.client import ApiClient, Configuration

Key = tuple[str, str, str]  # (collection, namespace, name); collection = group/version/plural


@dataclass
class _Watcher:
    collection: str
    namespace: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    stalled: bool = False


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = _merge(result.get(k), v)
    return result


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.history: list[tuple[int, str, str, str, dict[str, Any]]] = []  # rv, type, collection, ns, obj
        self.history_limit: int | None = None  # keep only the last N events (0: none; benchmarks)
        self.rv = itertools.count(100)
        self.current_rv = 99
        self.compacted_rv = 0
        self.watchers: list[_Watcher] = []
        self.requests: list[tuple[str, str, dict[str, str], str]] = []  # method, path, query, content type
        self.delete_bodies: list[tuple[str, dict[str, Any]]] = []  # path, DeleteOptions (preconditions)
        self._fail: list[tuple[int, str | None, dict[str, str]]] = []
        self._hang: list[float] = []
        self._expire_continue = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self.drop_watches()
        if self._runner:
            await self._runner.cleanup()

    def api_client(self) -> ApiClient:
        cfg = Configuration(host=self.url)
        return ApiClient(cfg)

    # -- fault injection -------------------------------------------------------------------

    def compact(self) -> None:
        """Forget history up to now: watches from an older RV get 410 Gone."""
        self.compacted_rv = self.current_rv
        self.history = [h for h in self.history if h[0] > self.compacted_rv]

    def stall_watches(self) -> None:
        """Open streams stop delivering anything (events are lost to them) but stay connected."""
        for w in self.watchers:
            w.stalled = True

    def drop_watches(self) -> None:
        for w in self.watchers:
            w.queue.put_nowait(None)

    def fail_next(
        self, count: int, status: int, method: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self._fail.extend([(status, method, headers or {})] * count)

    def expire_next_continue(self, count: int = 1) -> None:
        """The next ``count`` list requests carrying a ``continue`` token get 410 Expired.

        What a real server answers when the token's snapshot was compacted while a client paged.
        """
        self._expire_continue += count

    def hang_next(self, count: int, seconds: float) -> None:
        """The next ``count`` requests get no answer for ``seconds`` (a stuck server)."""
        self._hang.extend([seconds] * count)

    def bookmark(self) -> None:
        for w in self.watchers:
            if not w.stalled:
                w.queue.put_nowait(
                    {
                        "type": "BOOKMARK",
                        "object": {"kind": "Bookmark", "metadata": {"resourceVersion": str(self.current_rv)}},
                    }
                )

    # -- direct state manipulation (bypasses HTTP) -----------------------------------------

    def put(self, collection: str, obj: dict[str, Any], event: str | None = None) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        key = (collection, meta.get("namespace", ""), meta["name"])
        existed = key in self.objects
        self.current_rv = next(self.rv)
        meta["resourceVersion"] = str(self.current_rv)
        self.objects[key] = obj
        self._emit(event or ("MODIFIED" if existed else "ADDED"), collection, key[1], obj)
        return obj

    def remove(self, collection: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.pop((collection, namespace, name), None)
        if obj is not None:
            self.current_rv = next(self.rv)
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.current_rv)
            self._emit("DELETED", collection, namespace, obj)
        return obj

    def remove_silently(self, collection: str, namespace: str, name: str) -> None:
        """Delete without any watch event or history (as if it happened during a gap)."""
        self.current_rv = next(self.rv)
        self.objects.pop((collection, namespace, name), None)

    def _emit(self, etype: str, collection: str, namespace: str, obj: dict[str, Any]) -> None:
        snapshot = copy.deepcopy(obj)
        if self.history_limit != 0:
            self.history.append((self.current_rv, etype, collection, namespace, snapshot))
            if self.history_limit and len(self.history) > self.history_limit:
                del self.history[: -self.history_limit]
        for w in self.watchers:
            if w.collection == collection and (not w.namespace or w.namespace == namespace) and not w.stalled:
                w.queue.put_nowait({"type": etype, "object": snapshot})

    # -- HTTP --------------------------------------------------------------------------------

    @staticmethod
    def _parse(path: str) -> tuple[str, str, str, str, str]:
        parts = [p for p in path.split("/") if p]
        if parts[0] == "api":
            gv, rest = parts[1], parts[2:]
            kind_prefix = f"core/{gv}"
        else:
            gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
            kind_prefix = gv
        ns = ""
        if rest and rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return f"{kind_prefix}/{plural}", ns, name, sub, gv

    def _status(self, code: int, reason: str, message: str = "") -> web.Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
        return web.json_response(body, status=code)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            (request.method, request.path, dict(request.query), request.headers.get("Content-Type", ""))
        )
        if self._hang:
            await asyncio.sleep(self._hang.pop(0))
        if self._fail:
            status, method, headers = self._fail[0]
            if method is None or method == request.method:
                self._fail.pop(0)
                resp = self._status(status, "Injected", "injected failure")
                resp.headers.update(headers)
                return resp
        collection, ns, name, sub, _ = self._parse(request.path)
        q = request.query
        if request.method == "GET" and not name:
            if q.get("watch") in ("true", "1", "True"):
                return await self._watch(request, collection, ns)
            if self._expire_continue and q.get("continue"):
                self._expire_continue -= 1
                return self._status(410, "Expired", "the provided continue parameter is too old")
            return self._list(collection, ns, q)
        if request.method == "GET":
            obj = self.objects.get((collection, ns, name))
            return web.json_response(obj) if obj else self._status(404, "NotFound", f"{name} not found")
        body = await request.json() if request.can_read_body else {}
        if request.method == "POST":
            meta = body.setdefault("metadata", {})
            if ns:
                meta["namespace"] = ns
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if (collection, ns, meta["name"]) in self.objects:
                return self._status(409, "AlreadyExists", f"{meta['name']} already exists")
            return web.json_response(self.put(collection, body), status=201)
        key = (collection, ns, name)
        current = self.objects.get(key)
        if request.method == "DELETE":
            self.delete_bodies.append((request.path, body or {}))
            if current is None:
                return self._status(404, "NotFound", f"{name} not found")
            pre = (body or {}).get("preconditions") or {}
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != current["metadata"]["resourceVersion"]
            ) or (pre.get("uid") and pre["uid"] != current["metadata"].get("uid")):
                return self._status(409, "Conflict", "precondition failed")
            return web.json_response(self.remove(*key))
        if (
            request.method == "PATCH"
            and request.content_type == "application/apply-patch+yaml"
            and current is None
        ):
            return web.json_response(self.put(collection, body), status=201)
        if current is None:
            return self._status(404, "NotFound", f"{name} not found")
        if request.method == "PUT":
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want and want != current["metadata"]["resourceVersion"]:
                return self._status(409, "Conflict", "the object has been modified")
            new = copy.deepcopy(current)
            if sub == "status":
                new["status"] = body.get("status")
            else:
                status = new.get("status")
                new = body
                new["metadata"] = {**current["metadata"], **(body.get("metadata") or {})}
                if status is not None:
                    new["status"] = status
        elif request.method == "PATCH":
            if request.content_type == "application/json-patch+json":
                return self._status(415, "UnsupportedMediaType", "json patch not implemented in the fake")
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want and want != current["metadata"]["resourceVersion"]:
                return self._status(409, "Conflict", "the object has been modified")
            body.get("metadata", {}).pop("resourceVersion", None)
            if sub == "status":
                new = copy.deepcopy(current)
                new["status"] = _merge(current.get("status"), body.get("status"))
            else:
                new = _merge(current, {k: v for k, v in body.items() if k != "status"})
        else:
            return self._status(405, "MethodNotAllowed")
        if sub != "status" and new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
        return web.json_response(self.put(collection, new))

    def _list(self, collection: str, ns: str, q: Any) -> web.Response:
        items = [
            copy.deepcopy(o)
            for (c, n, _), o in sorted(self.objects.items())
            if c == collection and (not ns or n == ns) and self._matches(o, q.get("labelSelector"))
        ]
        start = int(q.get("continue") or 0)
        limit = int(q.get("limit") or 0)
        meta: dict[str, Any] = {"resourceVersion": str(self.current_rv)}
        if limit and start + limit < len(items):
            meta["continue"] = str(start + limit)
            items = items[start : start + limit]
        else:
            items = items[start:]
        return web.json_response({"kind": "List", "apiVersion": "v1", "metadata": meta, "items": items})

    @staticmethod
    def _matches(obj: dict[str, Any], selector: str | None) -> bool:
        if not selector:
            return True
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(labels.get(k) == v for k, _, v in (p.partition("=") for p in selector.split(",")))

    async def _watch(self, request: web.Request, collection: str, ns: str) -> web.StreamResponse:
        rv = int(request.query.get("resourceVersion") or 0)
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        if rv and rv < self.compacted_rv:
            err = {
                "type": "ERROR",
                "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
            }
            await resp.write(json.dumps(err).encode() + b"\n")
            return resp
        watcher = _Watcher(collection, ns)
        for hrv, etype, c, n, obj in self.history:
            if hrv > rv and c == collection and (not ns or n == ns):
                watcher.queue.put_nowait({"type": etype, "object": obj})
        self.watchers.append(watcher)
        try:
            while True:
                event = await watcher.queue.get()
                if event is None:
                    break
                await resp.write(json.dumps(event).encode() + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watchers.remove(watcher)
        return resp


@asynccontextmanager
async def fake_apiserver() -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _serve_forever(port: int) -> None:
    server = FakeApiServer()
    server.history_limit = 0
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":  # a standalone fake for benchmarks: python -m tests.fakes.apiserver PORT
    import sys

    asyncio.run(_serve_forever(int(sys.argv[1])))
