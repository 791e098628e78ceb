import time

import pytest

from jangar.runtime.client import Client, PatchType
from jangar.runtime.errors import AlreadyExistsError, ApiError, ConflictError, NotFoundError
from jangar.runtime.resources import CONFIGMAPS, ResourceRef
from tests.fakes.apiserver import FakeApiServer

WIDGETS = ResourceRef("example.com", "v1", "Widget", "widgets")


def test_paths_for_core_custom_and_cluster_scoped() -> None:
    assert CONFIGMAPS.path("ns", "a") == "/api/v1/namespaces/ns/configmaps/a"
    assert WIDGETS.path("ns", "w", "status") == "/apis/example.com/v1/namespaces/ns/widgets/w/status"
    assert WIDGETS.path() == "/apis/example.com/v1/widgets"
    nodes = ResourceRef("", "v1", "Node", "nodes", namespaced=False)
    assert nodes.path("ignored", "n1") == "/api/v1/nodes/n1"
    assert WIDGETS.api_version == "example.com/v1" and CONFIGMAPS.api_version == "v1"


async def test_crud_round_trip(client: Client, fake: FakeApiServer) -> None:
    created = await client.create(
        WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"size": 1}}
    )
    assert created["kind"] == "Widget" and created["apiVersion"] == "example.com/v1"
    with pytest.raises(AlreadyExistsError):
        await client.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}})
    got = await client.get(WIDGETS, "w", "ns")
    assert got["spec"] == {"size": 1}
    patched = await client.patch(WIDGETS, "w", {"spec": {"size": 2}}, namespace="ns")
    assert patched["spec"]["size"] == 2
    status = await client.patch_status(WIDGETS, "w", {"status": {"ready": True}}, namespace="ns")
    assert status["status"] == {"ready": True}
    await client.delete(WIDGETS, "w", "ns")
    with pytest.raises(NotFoundError):
        await client.get(WIDGETS, "w", "ns")
    assert await client.delete(WIDGETS, "w", "ns", ignore_not_found=True) is None


async def test_patch_sends_explicit_content_types(client: Client, fake: FakeApiServer) -> None:
    await client.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}})
    assert fake.requests[-1][3] == "application/json"
    await client.patch(WIDGETS, "w", {"spec": {"a": 1}}, namespace="ns")
    assert fake.requests[-1][3] == "application/merge-patch+json"
    await client.patch_status(WIDGETS, "w", {"status": {"a": 1}}, namespace="ns")
    assert fake.requests[-1][1].endswith("/widgets/w/status")
    await client.apply(
        WIDGETS,
        {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"a": 2}},
        field_manager="me",
        force=True,
    )
    method, _, query, ctype = fake.requests[-1]
    assert (method, query, ctype) == (
        "PATCH",
        {"fieldManager": "me", "force": "true"},
        "application/apply-patch+yaml",
    )
    with pytest.raises(ValueError, match="field manager"):
        await client.apply(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}})


async def test_update_and_conditional_patch_detect_conflicts(client: Client) -> None:
    w = await client.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}, "spec": {"n": 1}})
    stale_rv = w["metadata"]["resourceVersion"]
    w["spec"]["n"] = 2
    fresh = await client.update(WIDGETS, w)
    w["spec"]["n"] = 3
    with pytest.raises(ConflictError):
        await client.update(WIDGETS, w)  # still carries the stale RV
    with pytest.raises(ConflictError):
        await client.patch(WIDGETS, "w", {"spec": {"n": 4}}, namespace="ns", resource_version=stale_rv)
    ok = await client.patch(
        WIDGETS,
        "w",
        {"spec": {"n": 4}},
        namespace="ns",
        resource_version=fresh["metadata"]["resourceVersion"],
    )
    assert ok["spec"]["n"] == 4


async def test_retries_429_and_5xx_honouring_retry_after(client: Client, fake: FakeApiServer) -> None:
    await client.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}})
    fake.fail_next(1, 429, headers={"Retry-After": "0.3"})
    fake.fail_next(1, 503)
    t0 = time.monotonic()
    got = await client.get(WIDGETS, "w", "ns")
    assert got["metadata"]["name"] == "w"
    assert time.monotonic() - t0 >= 0.3
    codes = {
        s.labels["code"]: s.value
        for m in client.metrics.registry.collect()  # type: ignore[union-attr]
        if m.name == "rest_client_requests"
        for s in m.samples
        if s.labels.get("method") == "GET"
    }
    assert codes == {"429": 1.0, "503": 1.0, "200": 1.0}


async def test_post_is_not_retried_on_5xx_but_gives_up_after_max_attempts(
    client: Client, fake: FakeApiServer
) -> None:
    fake.fail_next(1, 500, method="POST")
    with pytest.raises(ApiError) as err:
        await client.create(WIDGETS, {"metadata": {"name": "w", "namespace": "ns"}})
    assert err.value.status == 500
    fake.fail_next(10, 503)
    with pytest.raises(ApiError) as err:
        await client.get(WIDGETS, "w", "ns")
    assert err.value.status == 503
    assert sum(1 for r in fake.requests if r[0] == "GET") == 4  # max_attempts


async def test_connection_errors_raise_status_zero() -> None:
    from kubernetes_asyncio.client import ApiClient, Configuration

    from jangar.runtime.client import RetryPolicy

    api = ApiClient(Configuration(host="http://127.0.0.1:9"))
    c = Client(api, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(ApiError) as err:
        await c.get(WIDGETS, "w", "ns")
    assert err.value.status == 0
    await api.close()


async def test_paginated_list_follows_continue_and_fills_kind(client: Client, fake: FakeApiServer) -> None:
    for i in range(7):
        fake.put(
            "example.com/v1/widgets",
            {"metadata": {"name": f"w{i}", "namespace": "ns", "labels": {"i": str(i % 2)}}},
        )
    result = await client.list(WIDGETS, "ns", limit=3)
    assert [o["metadata"]["name"] for o in result.items] == [f"w{i}" for i in range(7)]
    assert all(o["kind"] == "Widget" for o in result.items)
    assert result.resource_version == str(fake.current_rv)
    assert sum(1 for r in fake.requests if r[0] == "GET") == 3
    odd = await client.list(WIDGETS, "ns", label_selector={"i": "1"})
    assert len(odd.items) == 3


async def test_json_patch_with_rv_precondition_prepends_test_op() -> None:
    sent = {}

    class Recorder(Client):
        async def request(self, method, path, **kw):  # type: ignore[no-untyped-def, override]
            sent.update(kw, method=method, path=path)
            return {}

    c = Recorder.__new__(Recorder)
    c.field_manager = None
    await c.patch(
        WIDGETS,
        "w",
        [{"op": "replace", "path": "/spec/a", "value": 1}],
        namespace="ns",
        patch_type=PatchType.JSON,
        resource_version="42",
    )
    assert sent["content_type"] == "application/json-patch+json"
    assert sent["body"][0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    assert sent["idempotent"] is False


async def test_every_request_has_a_timeout_and_idempotent_ones_retry(fake: FakeApiServer) -> None:
    from jangar.runtime.client import RetryPolicy

    api = fake.api_client()
    c = Client(api, timeout=0.2, retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02))
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    fake.hang_next(1, 1.0)
    t0 = time.monotonic()
    assert (await c.get(WIDGETS, "w", "ns"))["metadata"][
        "name"
    ] == "w"  # first attempt timed out, retry answered
    assert time.monotonic() - t0 < 1.0
    fake.hang_next(3, 1.0)
    with pytest.raises(ApiError) as err:
        await c.get(WIDGETS, "w", "ns")
    assert err.value.status == 0 and "Timeout" in str(err.value)
    fake.hang_next(1, 1.0)
    with pytest.raises(ApiError):  # a POST that timed out may have been applied: not retried
        await c.create(WIDGETS, {"metadata": {"name": "x", "namespace": "ns"}})
    await api.close()


async def test_clients_of_one_api_client_share_a_session_that_closes_with_it(fake: FakeApiServer) -> None:
    from jangar.runtime import client as client_mod

    if client_mod._PROXY_ENV:
        pytest.skip("proxy variables set: the trust_env session is used on purpose")
    api = fake.api_client()
    a, b = Client(api), Client(api)
    fake.put("example.com/v1/widgets", {"metadata": {"name": "w", "namespace": "ns"}})
    await a.get(WIDGETS, "w", "ns")
    await b.get(WIDGETS, "w", "ns")
    assert a._session is b._session
    assert a._session is not api.rest_client.pool_manager
    assert a._session.trust_env is False
    assert a._session.connector is api.rest_client.pool_manager.connector  # one pool, one TLS context
    session = a._session
    await api.close()
    assert session.closed  # nothing left to leak
