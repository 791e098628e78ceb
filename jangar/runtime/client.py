"""A thin client for any resource type, core or custom, over kubernetes-asyncio's HTTP session.

Why not the generated APIs: they deserialise into models (about 30x slower than
``json.loads``, see docs/runtime.md), default to no timeout at all, pick the wrong content
type for custom-resource patches, and hide watch retries. This client reuses
kubernetes-asyncio's :class:`~kubernetes_asyncio.client.ApiClient` only for what it does
well (kubeconfig loading, TLS, credentials) and sends the requests itself:

* every request has a timeout (30 s by default); watches use a read watchdog instead;
* 429, 5xx and connection failures are retried with jittered exponential backoff, honouring
  ``Retry-After``; non-idempotent requests (POST, JSON patch) are retried only when the
  server cannot have acted on them (429, connection refused);
* patches carry an explicit content type (merge, JSON, strategic or server-side apply);
* optimistic concurrency: ``update`` sends the object's resourceVersion, and ``patch`` takes
  a ``resource_version`` precondition;
* every response is counted in ``rest_client_requests_total{code,method,host}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import structlog
from kubernetes_asyncio.client import ApiClient

from jangar.runtime.errors import ApiError, GoneError, WatchStalledError
from jangar.runtime.fence import check_write
from jangar.runtime.metrics import RuntimeMetrics
from jangar.runtime.resources import JsonObject, ResourceRef

log = structlog.get_logger("jangar.runtime.client")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})
_PROXY_ENV = any(
    os.environ.get(v)
    for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
)
"""Proxy variables set: keep kubernetes-asyncio's ``trust_env`` session so they are honoured."""


class PatchType(StrEnum):
    """The content type of a PATCH; custom resources support all but strategic merge."""

    MERGE = "application/merge-patch+json"
    JSON = "application/json-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


class PropagationPolicy(StrEnum):
    ORPHAN = "Orphan"
    BACKGROUND = "Background"
    FOREGROUND = "Foreground"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Jittered exponential backoff for transient failures."""

    max_attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (0-based): base*2^n capped, times a jitter in [1, 2)."""
        return float(min(self.max_delay, self.base_delay * (2.0**attempt)) * (1.0 + random.random()))


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(slots=True)
class ObjectList:
    """The result of a (paginated) list: all items and the collection's resourceVersion."""

    items: list[JsonObject]
    resource_version: str
    continue_token: str | None = None


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One decoded watch event: ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: JsonObject = field(repr=False)


def _selector(sel: str | Mapping[str, str] | None) -> str | None:
    if sel is None or isinstance(sel, str):
        return sel or None
    return ",".join(f"{k}={v}" for k, v in sel.items()) or None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Client:
    """Reads and writes any resource type. Create one per process and share it."""

    def __init__(
        self,
        api: ApiClient,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        field_manager: str | None = None,
        metrics: RuntimeMetrics | None = None,
        owns_api_client: bool = False,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.retry = retry
        self.field_manager = field_manager
        self.metrics = metrics
        self._owns_api = owns_api_client
        self._host = str(api.configuration.host or "").rstrip("/")
        self._host_label = urlsplit(self._host).netloc or self._host

    @classmethod
    async def from_kubeconfig(
        cls, path: str | None = None, *, context: str | None = None, **kwargs: Any
    ) -> Client:
        """A client (owning its own :class:`ApiClient`) from a kubeconfig file or in-cluster config."""
        from kubernetes_asyncio import config as k8s_config

        if path is None:
            try:
                k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
                api = ApiClient()
            except k8s_config.ConfigException:
                api = await k8s_config.new_client_from_config(context=context)
        else:
            api = await k8s_config.new_client_from_config(config_file=path, context=context)
        return cls(api, owns_api_client=True, **kwargs)

    async def close(self) -> None:
        if self._owns_api:
            await self.api.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def with_metrics(self, metrics: RuntimeMetrics) -> Client:
        """The same connection pool, counting requests in ``metrics``."""
        c = Client(
            self.api,
            timeout=self.timeout,
            retry=self.retry,
            field_manager=self.field_manager,
            metrics=metrics,
        )
        return c

    # -- transport --------------------------------------------------------------------------

    @property
    def _session(self) -> aiohttp.ClientSession:
        """The aiohttp session for this ApiClient's connection pool.

        kubernetes-asyncio's own session has ``trust_env=True``, which costs two thread-pool
        hops per request (netrc and proxy lookup). Unless proxy variables are set, we use a
        session of our own over the *same* connector (same TLS context and pool), shared by
        every Client of that ApiClient; closing the ApiClient closes the connector and with it
        this session.
        """
        rest = self.api.rest_client
        base: aiohttp.ClientSession = rest.pool_manager
        if _PROXY_ENV:
            return base
        session: aiohttp.ClientSession | None = getattr(self.api, "_jangar_session", None)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                connector=base.connector, connector_owner=False, trust_env=False, read_bufsize=2**21
            )
            setattr(self.api, "_jangar_session", session)  # noqa: B010 (ApiClient has no slot for it)
        return session

    def _transport_options(self) -> dict[str, Any]:
        rest = self.api.rest_client
        extra: dict[str, Any] = {}
        if rest.server_hostname:
            extra["server_hostname"] = rest.server_hostname
        if rest.proxy:
            extra["proxy"] = rest.proxy
            if rest.proxy_headers:
                extra["proxy_headers"] = rest.proxy_headers
        return extra

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers: dict[str, str] = {"Accept": "application/json"}
        headers.update(self.api.default_headers)
        if content_type:
            headers["Content-Type"] = content_type
        await self.api.update_params_for_auth(headers, [], ["BearerToken"])
        return headers

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        url = self._host + path
        if query:
            params = {
                k: ("true" if v is True else "false" if v is False else v)
                for k, v in query.items()
                if v is not None
            }
            if params:
                url += "?" + urlencode(params)
        return url

    def _count(self, code: str, method: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.rest_client_requests_total.labels(code, method, self._host_label).inc()
            self.metrics.rest_client_request_duration_seconds.labels(method, self._host_label).observe(
                seconds
            )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one request (with retries) and return the decoded JSON body.

        Raises :class:`ApiError` (or a subclass) for error statuses; ``status == 0`` means the
        transport failed after all retries.
        """
        url = self._url(path, query)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        if data is not None and content_type is None:
            content_type = "application/json"
        retryable = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        client_timeout = aiohttp.ClientTimeout(total=timeout or self.timeout)
        extra = self._transport_options()
        attempt = 0
        while True:
            check_write(method, path)  # the leader fence (jangar.runtime.fence), before every attempt
            headers = await self._headers(content_type)
            started = time.monotonic()
            try:
                async with self._session.request(
                    method, url, data=data, headers=headers, timeout=client_timeout, **extra
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    retry_after = _retry_after(resp.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._count("<error>", method, time.monotonic() - started)
                # A refused connection never reached the server, so even a POST can be retried.
                safe = retryable or isinstance(exc, aiohttp.ClientConnectorError)
                attempt += 1
                if not safe or attempt >= self.retry.max_attempts:
                    raise ApiError(0, "ConnectionError", f"{method} {path}: {exc!r}") from exc
                delay = self.retry.delay(attempt - 1)
                log.debug("request failed, retrying", method=method, path=path, error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                continue
            self._count(str(status), method, time.monotonic() - started)
            if status < 400:
                return json.loads(raw) if raw else None
            try:
                decoded = json.loads(raw) if raw else None
            except ValueError:
                decoded = {"message": raw[:500].decode(errors="replace")}
            error = ApiError.from_status(status, decoded if isinstance(decoded, dict) else None, retry_after)
            attempt += 1
            transient = status == 429 or (status >= 500 and retryable)
            if not transient or attempt >= self.retry.max_attempts:
                raise error
            delay = max(retry_after or 0.0, self.retry.delay(attempt - 1))
            log.debug(
                "request throttled or failed, retrying", method=method, path=path, status=status, delay=delay
            )
            await asyncio.sleep(delay)

    # -- reads ------------------------------------------------------------------------------

    async def get(self, ref: ResourceRef, name: str, namespace: str | None = None) -> JsonObject:
        """GET one object; raises :class:`NotFoundError` if absent."""
        obj: JsonObject = await self.request("GET", ref.path(namespace, name))
        return obj

    async def list_page(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
        limit: int | None = 500,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> ObjectList:
        """One page of a list. Items get ``apiVersion`` and ``kind`` filled in (lists omit them)."""
        query = {
            "labelSelector": _selector(label_selector),
            "fieldSelector": _selector(field_selector),
            "limit": limit,
            "continue": continue_token,
            "resourceVersion": resource_version if not continue_token else None,
        }
        body = await self.request("GET", ref.path(namespace), query=query)
        items: list[JsonObject] = body.get("items") or []
        for item in items:
            item.setdefault("apiVersion", ref.api_version)
            item.setdefault("kind", ref.kind)
        meta = body.get("metadata") or {}
        return ObjectList(items, str(meta.get("resourceVersion") or ""), meta.get("continue") or None)

    async def list(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
        limit: int | None = 500,
        resource_version: str | None = None,
    ) -> ObjectList:
        """List all objects, following ``continue`` tokens; the result carries the list's RV."""
        items: list[JsonObject] = []
        token: str | None = None
        while True:
            page = await self.list_page(
                ref,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=limit,
                continue_token=token,
                resource_version=resource_version,
            )
            items.extend(page.items)
            token = page.continue_token
            if not token:
                return ObjectList(items, page.resource_version)

    async def watch(
        self,
        ref: ResourceRef,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | Mapping[str, str] | None = None,
        field_selector: str | Mapping[str, str] | None = None,
        timeout_seconds: int | None = None,
        idle_timeout: float | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[WatchEvent, None]:
        """Stream watch events (no retries: the reflector owns reconnection).

        Ends when the server closes the stream. Raises :class:`GoneError` on a 410 (HTTP or
        in-stream ERROR), :class:`ApiError` on other errors, and :class:`WatchStalledError`
        if no bytes arrive for ``idle_timeout`` seconds (the watchdog: a half-open TCP
        connection otherwise hangs forever). Use with :func:`contextlib.aclosing`.
        """
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": allow_bookmarks or None,
            "labelSelector": _selector(label_selector),
            "fieldSelector": _selector(field_selector),
            "timeoutSeconds": timeout_seconds,
        }
        url = self._url(ref.path(namespace), query)
        headers = await self._headers(None)
        connect = min(self.timeout, 10.0)
        timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect, sock_read=None)
        extra = self._transport_options()
        started = time.monotonic()
        try:
            resp_cm = self._session.get(url, headers=headers, timeout=timeout, **extra)
            resp = await resp_cm.__aenter__()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._count("<error>", "WATCH", time.monotonic() - started)
            raise ApiError(0, "ConnectionError", f"watch {ref}: {exc!r}") from exc
        try:
            self._count(str(resp.status), "WATCH", time.monotonic() - started)
            if resp.status >= 400:
                raw = await resp.read()
                try:
                    decoded = json.loads(raw) if raw else None
                except ValueError:
                    decoded = None
                raise ApiError.from_status(
                    resp.status, decoded if isinstance(decoded, dict) else None, _retry_after(resp.headers)
                )
            buffer = b""
            while True:
                try:
                    async with asyncio.timeout(idle_timeout):
                        chunk = await resp.content.readany()
                except TimeoutError as exc:
                    raise WatchStalledError(f"watch {ref} silent for {idle_timeout}s") from exc
                except aiohttp.ClientError as exc:
                    raise ApiError(0, "ConnectionError", f"watch {ref}: {exc!r}") from exc
                if not chunk:
                    return
                buffer += chunk
                if b"\n" not in chunk:
                    continue
                # One split per chunk, not one copy of the remainder per line (quadratic).
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    etype = event.get("type", "")
                    obj = event.get("object") or {}
                    if etype == "ERROR":
                        raise ApiError.from_status(int(obj.get("code") or 500), obj)
                    yield WatchEvent(etype, obj)
        finally:
            await resp_cm.__aexit__(None, None, None)

    # -- writes -----------------------------------------------------------------------------

    def _manager(self, field_manager: str | None) -> str | None:
        return field_manager or self.field_manager

    async def create(
        self,
        ref: ResourceRef,
        obj: JsonObject,
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
    ) -> JsonObject:
        """POST a new object (namespace from the argument or ``obj.metadata.namespace``)."""
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        body = {"apiVersion": ref.api_version, "kind": ref.kind, **obj}
        created: JsonObject = await self.request(
            "POST", ref.path(ns), query={"fieldManager": self._manager(field_manager)}, body=body
        )
        return created

    async def update(
        self,
        ref: ResourceRef,
        obj: JsonObject,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> JsonObject:
        """PUT the whole object. If it carries ``metadata.resourceVersion`` the server rejects
        a stale write with :class:`ConflictError` (optimistic concurrency)."""
        meta = obj.get("metadata") or {}
        path = ref.path(meta.get("namespace"), meta["name"], subresource)
        body = {"apiVersion": ref.api_version, "kind": ref.kind, **obj}
        updated: JsonObject = await self.request(
            "PUT", path, query={"fieldManager": self._manager(field_manager)}, body=body
        )
        return updated

    async def update_status(
        self, ref: ResourceRef, obj: JsonObject, *, field_manager: str | None = None
    ) -> JsonObject:
        """PUT to the status subresource (needs the current resourceVersion)."""
        return await self.update(ref, obj, subresource="status", field_manager=field_manager)

    async def patch(
        self,
        ref: ResourceRef,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: PatchType = PatchType.MERGE,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
        resource_version: str | None = None,
    ) -> JsonObject:
        """PATCH with an explicit content type.

        ``resource_version`` makes the patch conditional: for a merge patch it is added as
        ``metadata.resourceVersion``, for a JSON patch as a leading ``test`` operation.
        """
        if resource_version is not None:
            if patch_type is PatchType.JSON:
                patch = [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": resource_version},
                    *patch,
                ]
            elif isinstance(patch, dict):
                meta = dict(patch.get("metadata") or {})
                meta["resourceVersion"] = resource_version
                patch = {**patch, "metadata": meta}
            else:
                raise ValueError("resource_version precondition needs a dict patch or a JSON patch")
        manager = self._manager(field_manager)
        if patch_type is PatchType.APPLY and not manager:
            raise ValueError("server-side apply needs a field manager")
        query = {"fieldManager": manager, "force": force if patch_type is PatchType.APPLY else None}
        patched: JsonObject = await self.request(
            "PATCH",
            ref.path(namespace, name, subresource),
            query=query,
            body=patch,
            content_type=patch_type.value,
            idempotent=patch_type is not PatchType.JSON,
        )
        return patched

    async def patch_status(self, ref: ResourceRef, name: str, patch: Any, **kwargs: Any) -> JsonObject:
        """:meth:`patch` on the status subresource (merge patch by default)."""
        return await self.patch(ref, name, patch, subresource="status", **kwargs)

    async def apply(
        self,
        ref: ResourceRef,
        obj: JsonObject,
        *,
        field_manager: str | None = None,
        force: bool = False,
        subresource: str | None = None,
    ) -> JsonObject:
        """Server-side apply of a partial object (only the fields this manager owns).

        ``apiVersion`` and ``kind`` are filled in; name and namespace come from ``obj.metadata``.
        ``force=True`` takes over fields owned by other managers.
        """
        meta = obj.get("metadata") or {}
        body = {"apiVersion": ref.api_version, "kind": ref.kind, **obj}
        return await self.patch(
            ref,
            meta["name"],
            body,
            namespace=meta.get("namespace"),
            patch_type=PatchType.APPLY,
            subresource=subresource,
            field_manager=field_manager,
            force=force,
        )

    async def apply_status(
        self, ref: ResourceRef, obj: JsonObject, *, field_manager: str | None = None, force: bool = False
    ) -> JsonObject:
        """Server-side apply on the status subresource."""
        return await self.apply(ref, obj, field_manager=field_manager, force=force, subresource="status")

    async def delete(
        self,
        ref: ResourceRef,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        grace_period_seconds: int | None = None,
        ignore_not_found: bool = False,
    ) -> JsonObject | None:
        """DELETE an object; ``uid``/``resource_version`` are preconditions (409 if they differ).

        Returns the server's answer (the object, while finalizers hold it, or a Status), or
        ``None`` for a missing object when ``ignore_not_found``.
        """
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy is not None:
            body["propagationPolicy"] = str(propagation_policy)
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            body["preconditions"] = preconditions
        try:
            result: JsonObject = await self.request("DELETE", ref.path(namespace, name), body=body)
        except ApiError as exc:
            if ignore_not_found and exc.status == 404:
                return None
            raise
        return result


__all__ = [
    "NO_RETRY",
    "ApiError",
    "Client",
    "GoneError",
    "ObjectList",
    "PatchType",
    "PropagationPolicy",
    "RetryPolicy",
    "WatchEvent",
]
