"""Audit events: their shape (no secret), the three sinks (stdout line, http POST with headers and a
timeout, a bounded queue that drops and counts instead of blocking), settings validation, and the events
the submission service and the controllers' decisions emit."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry

from jangar.admission import Admit, Rejection, Waiting
from jangar.api.refs import AGENTRUNS
from jangar.audit import AuditEvent, HttpSink, NoneSink, StdoutSink, audit_run, build_sink
from jangar.controllers.audit import admission_event, approval_event, key_event, step_event
from jangar.runtime.testing import FakeCache
from jangar.services import QueueFull, RunsService, Submission
from jangar.settings import Settings, SettingsError
from tests.unit.services.fakes import FakeClient

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUN = {
    "apiVersion": "agents.proompteng.ai/v1alpha1",
    "kind": "AgentRun",
    "metadata": {"name": "r1", "namespace": "agents", "uid": "u1"},
    "spec": {"parameters": {"token": "ghp_secret"}, "secrets": ["github-token"]},
}


class Collect:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    async def close(self, timeout: float = 5.0) -> None:
        return None


def _dropped(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("jangar_audit_events_dropped_total", {"reason": reason}) or 0.0


def test_an_event_carries_identity_and_decision_never_the_spec() -> None:
    body = audit_run(RUN, "agentrun.submit", source="api", decision="accepted", time=AT).as_dict()
    assert body == {
        "time": "2026-12-01T12:00:00Z",
        "source": "api",
        "action": "agentrun.submit",
        "namespace": "agents",
        "kind": "AgentRun",
        "name": "r1",
        "uid": "u1",
        "decision": "accepted",
        "reason": None,
    }
    assert "ghp_secret" not in json.dumps(body) and "github-token" not in json.dumps(body)


def test_the_stdout_sink_writes_one_json_line_per_event() -> None:
    out = io.StringIO()
    registry = CollectorRegistry()
    sink = StdoutSink(out, registry=registry)
    sink.emit(audit_run(RUN, "agentrun.submit", source="api", decision="accepted", time=AT))
    sink.emit(audit_run(RUN, "admission.decision", source="controller", decision="held", time=AT))
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["audit"]["action"] for line in lines] == [
        "agentrun.submit",
        "admission.decision",
    ]
    assert registry.get_sample_value("jangar_audit_events_total", {"sink": "stdout"}) == 2


async def test_the_http_sink_posts_json_with_the_headers() -> None:
    received: list[tuple[dict[str, Any], str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("Authorization")))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/audit", handler)
    async with TestServer(app) as server:
        registry = CollectorRegistry()
        sink = HttpSink(
            str(server.make_url("/audit")), headers={"Authorization": "Bearer t0k"}, registry=registry
        )
        sink.emit(audit_run(RUN, "agentrun.submit", source="api", decision="accepted"))
        assert await sink.flush(5)
        await sink.close()
    assert len(received) == 1
    body, auth = received[0]
    assert (body["action"], body["name"], body["decision"], auth) == (
        "agentrun.submit",
        "r1",
        "accepted",
        "Bearer t0k",
    )
    assert registry.get_sample_value("jangar_audit_events_total", {"sink": "http"}) == 1


async def test_a_slow_or_failing_receiver_costs_drops_never_a_wait() -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/slow", slow)
    app.router.add_post("/fail", failing)
    async with TestServer(app) as server:
        registry = CollectorRegistry()
        sink = HttpSink(str(server.make_url("/slow")), timeout=0.2, queue_size=2, registry=registry)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(10):
            sink.emit(audit_run(RUN, "agentrun.submit", source="api"))
        assert loop.time() - started < 0.1  # emit never waits for the receiver
        assert _dropped(registry, "queue_full") >= 7
        assert await sink.flush(5)  # every queued POST timed out (0.2 s) and was dropped
        assert _dropped(registry, "error") >= 1
        release.set()
        await sink.close()

        failing_sink = HttpSink(str(server.make_url("/fail")), registry=registry)
        failing_sink.emit(audit_run(RUN, "agentrun.submit", source="api"))
        assert await failing_sink.flush(5)
        await failing_sink.close()
        assert _dropped(registry, "status") == 1
        failing_sink.emit(audit_run(RUN, "agentrun.submit", source="api"))
        assert _dropped(registry, "closed") == 1


def test_the_sink_follows_the_settings_and_http_needs_a_url() -> None:
    assert isinstance(build_sink(Settings.from_env({}).audit), NoneSink)
    assert isinstance(build_sink(Settings.from_env({"JANGAR_AUDIT_SINK_TYPE": "stdout"}).audit), StdoutSink)
    http = Settings.from_env(
        {
            "AGENTS_AUDIT_SINK_TYPE": "http",
            "AGENTS_AUDIT_SINK_URL": "https://audit.example/v1",
            "AGENTS_AUDIT_SINK_HEADERS": '{"Authorization": "Bearer x"}',
            "AGENTS_AUDIT_SINK_TIMEOUT_MS": "1500",
        }
    ).audit
    sink = build_sink(http, CollectorRegistry())
    assert isinstance(sink, HttpSink) and sink.url == "https://audit.example/v1" and sink.timeout == 1.5
    for env, name in [
        ({"JANGAR_AUDIT_SINK_TYPE": "http"}, "JANGAR_AUDIT_SINK_URL"),
        ({"JANGAR_AUDIT_SINK_TYPE": "http", "JANGAR_AUDIT_SINK_URL": "ftp://x"}, "JANGAR_AUDIT_SINK_URL"),
        ({"JANGAR_AUDIT_SINK_TYPE": "kafka"}, "JANGAR_AUDIT_SINK_TYPE"),
        ({"JANGAR_AUDIT_SINK_HEADERS": '{"a": 1}'}, "JANGAR_AUDIT_SINK_HEADERS"),
        ({"JANGAR_AUDIT_SINK_TIMEOUT_MS": "0"}, "JANGAR_AUDIT_SINK_TIMEOUT_MS"),
    ]:
        with pytest.raises(SettingsError) as err:
            Settings.from_env(env)
        assert err.value.name == name


def test_idempotency_settings_defaults_and_aliases() -> None:
    assert Settings.from_env({}).idempotency.enabled is True
    assert Settings.from_env({}).idempotency.retention_days == 30
    s = Settings.from_env(
        {"AGENTS_AGENTRUN_IDEMPOTENCY_ENABLED": "false", "AGENTS_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS": "7"}
    )
    assert (s.idempotency.enabled, s.idempotency.retention_days) == (False, 7)
    with pytest.raises(SettingsError, match="JANGAR_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS"):
        Settings.from_env({"JANGAR_AGENTRUN_IDEMPOTENCY_RETENTION_DAYS": "0"})


# -- who emits what ------------------------------------------------------------------------------------------


async def test_a_submission_is_audited_accepted_then_replayed() -> None:
    sink = Collect()
    service = RunsService(FakeClient(), FakeCache(), Settings.from_env({}), audit=sink)  # type: ignore[arg-type]
    sub = Submission("coder", "agents", "impl", idempotency_key="k1")
    await service.submit(sub, actor="system:serviceaccount:agents:ci")
    await service.submit(sub)
    assert [(e.action, e.decision, e.source, e.kind) for e in sink.events] == [
        ("agentrun.submit", "accepted", "api", "AgentRun"),
        ("agentrun.submit", "replayed", "api", "AgentRun"),
    ]
    assert sink.events[0].name == sink.events[1].name and sink.events[0].uid
    assert sink.events[0].actor == "system:serviceaccount:agents:ci" and sink.events[1].actor is None
    assert sink.events[0].as_dict()["actor"] == "system:serviceaccount:agents:ci"


async def test_a_refused_submission_is_audited() -> None:
    sink = Collect()
    settings = Settings.from_env(
        {
            "JANGAR_AGENTS_CONTROLLER_QUEUE_NAMESPACE": "1",
            "JANGAR_AGENTS_CONTROLLER_CONCURRENCY_NAMESPACE": "1",
        }
    )
    cache = FakeCache()
    for name in ("a", "b"):
        cache.add(
            AGENTRUNS,
            {
                "metadata": {
                    "name": name,
                    "namespace": "agents",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                },
                "spec": {"agentRef": {"name": "coder"}},
                "status": {"phase": ""},
            },
        )
    service = RunsService(FakeClient(), cache, settings, audit=sink)  # type: ignore[arg-type]
    with pytest.raises(QueueFull):
        await service.submit(Submission("coder", "agents", "impl"))
    assert [(e.decision, e.reason) for e in sink.events] == [("rejected", "QueueFull")]


def test_admission_decisions_are_audited_once_per_change() -> None:
    pending = {**RUN, "status": {"phase": "Pending"}}
    queued = {**RUN, "status": {"phase": "Queued"}}
    wait = Waiting(scope="namespace", key="agents", limit=1, position=2, message="full")
    held = admission_event(pending, wait)
    assert held is not None and (held.decision, held.reason, held.detail["position"]) == (
        "held",
        wait.reason,
        "2",
    )
    assert admission_event(queued, wait) is None  # still waiting: no new event
    rejected = admission_event(pending, Rejection("QueueLimitExceeded", "full", "namespace", 1))
    assert rejected is not None and (rejected.decision, rejected.reason) == ("rejected", "QueueLimitExceeded")
    admitted = admission_event(queued, Admit(AT))
    assert admitted is not None and admitted.decision == "admitted"
    assert admission_event(pending, None) is None
    assert key_event(RUN, "IdempotencyKeyInUse").reason == "IdempotencyKeyInUse"


def test_steps_and_approvals_are_audited() -> None:
    parent = {"kind": "OrchestrationRun", "metadata": {"name": "o1", "namespace": "agents", "uid": "p"}}
    child = {
        "kind": "AgentRun",
        "metadata": {
            "name": "o1-build",
            "namespace": "agents",
            "uid": "c",
            "labels": {"jangar.proompteng.ai/orchestration-step": "build"},
        },
    }
    event = step_event(parent, child)
    assert (event.action, event.kind, event.name, event.detail) == (
        "orchestrationrun.step.submit",
        "AgentRun",
        "o1-build",
        {"orchestrationRun": "o1", "step": "build"},
    )
    approved = approval_event(parent, "ApprovalApproved")
    assert approved is not None and approved.decision == "approved"
    assert approval_event(parent, "SignalReceived") is None
