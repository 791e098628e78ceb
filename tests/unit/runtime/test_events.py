import asyncio
from typing import Any

import structlog

from jangar.runtime import Manager, ManagerOptions
from jangar.runtime.client import Client
from jangar.runtime.events import EventRecorder, truncate_message
from jangar.runtime.testing import FakeClock
from tests.fakes.apiserver import FakeApiServer

EVENTS = "core/v1/events"


def widget(name: str = "w") -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "ns", "uid": f"u-{name}", "resourceVersion": "7"},
    }


def stored_events(fake: FakeApiServer) -> list[dict[str, Any]]:
    return [v for k, v in fake.objects.items() if k[0] == EVENTS]


async def test_records_and_folds_repeats(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "widget-controller", instance="jangar-0")
    rec.normal(widget(), "Created", "made a thing")
    await rec.flush()
    rec.normal(widget(), "Created", "made a thing")
    rec.warning(widget(), "Failed", "boom")
    await rec.flush()
    events = stored_events(fake)
    assert len(events) == 2
    created = next(e for e in events if e["reason"] == "Created")
    assert created["count"] == 2
    assert created["involvedObject"] == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "w",
        "namespace": "ns",
        "uid": "u-w",
        "resourceVersion": "7",
    }
    assert created["source"] == {"component": "widget-controller"}
    assert created["reportingComponent"] == "widget-controller"
    assert created["reportingInstance"] == "jangar-0"
    assert created["metadata"]["namespace"] == "ns"
    failed = next(e for e in events if e["reason"] == "Failed")
    assert failed["type"] == "Warning" and failed["count"] == 1


async def test_dedupe_window_follows_the_injected_clock(client: Client, fake: FakeApiServer) -> None:
    clock = FakeClock()
    rec = EventRecorder(client, "c", dedupe_window=60, clock=clock)
    rec.normal(widget(), "Synced", "ok")
    await rec.flush()
    clock.step(59)
    rec.normal(widget(), "Synced", "ok")  # within the window: folded
    await rec.flush()
    assert [e["count"] for e in stored_events(fake)] == [2]
    clock.step(61)
    rec.normal(widget(), "Synced", "ok")  # window passed: a new Event
    await rec.flush()
    assert sorted(e["count"] for e in stored_events(fake)) == [1, 2]


async def test_a_folded_event_that_expired_is_created_again(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c")
    rec.normal(widget(), "Synced", "ok")
    await rec.flush()
    (event,) = stored_events(fake)
    fake.remove(EVENTS, "ns", event["metadata"]["name"])  # the API server's event TTL
    rec.normal(widget(), "Synced", "ok")
    await rec.flush()
    (again,) = stored_events(fake)
    assert again["count"] == 1 and again["metadata"]["name"] != event["metadata"]["name"]


def test_messages_are_truncated_to_1024_bytes_on_a_character_boundary() -> None:
    assert truncate_message("short") == "short"
    cut = truncate_message("é" * 1000)  # 2000 bytes
    assert len(cut.encode()) <= 1024 and cut.endswith("...") and "\ufffd" not in cut


async def test_long_messages_and_reasons_are_truncated(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c")
    rec.warning(widget(), "R" * 300, "x" * 5000)
    await rec.flush()
    (event,) = stored_events(fake)
    assert len(event["message"].encode()) == 1024 and len(event["reason"]) == 128


async def test_failures_never_raise(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c")
    fake.fail_next(20, 403)
    with structlog.testing.capture_logs() as logs:
        rec.normal(widget(), "X", "y")
        assert await rec.flush(5) is True  # logged, not raised
    assert not stored_events(fake)
    assert any(e["event"] == "could not record event" for e in logs)
    rec.normal({"not": "an object"}, "X", "y")  # garbage in: still no exception
    await rec.flush(5)


def test_recording_without_an_event_loop_drops_instead_of_raising(client: Client) -> None:
    rec = EventRecorder(client, "c")
    rec.normal(widget(), "X", "y")
    assert rec.dropped == 1 and rec.pending == 0


async def test_the_buffer_is_bounded_and_recording_never_blocks(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c", max_pending=3)
    fake.hang_next(1, 0.3)  # a slow API server
    with structlog.testing.capture_logs() as logs:
        for i in range(10):
            rec.normal(widget(f"w{i}"), "X", "y")  # returns immediately
    assert rec.pending <= 3
    assert rec.dropped >= 6
    assert [e["event"] for e in logs].count("event buffer full, dropping events") == 1
    assert await rec.flush(5)
    assert 1 <= len(stored_events(fake)) <= 4


async def test_recent_events_memory_is_bounded(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c", max_recent=2)
    for name in ("a", "b", "c"):
        rec.normal(widget(name), "X", "y")
    await rec.flush()
    rec.normal(widget("a"), "X", "y")  # "a" was forgotten: a new Event, not a fold
    await rec.flush()
    assert sorted(e["involvedObject"]["name"] for e in stored_events(fake)) == ["a", "a", "b", "c"]


async def test_flush_times_out_on_a_hung_api_server(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c")
    fake.hang_next(1, 2)
    rec.normal(widget(), "X", "y")
    await asyncio.sleep(0.05)
    assert await rec.close(0.05) is False
    assert rec.pending == 0


async def test_manager_recorders_are_per_component_and_flushed_at_shutdown(
    client: Client, fake: FakeApiServer
) -> None:
    mgr = Manager(client, ManagerOptions(bind_address=None, reporting_instance="pod-7"))
    rec = mgr.event_recorder("widget-controller")
    assert mgr.event_recorder("widget-controller") is rec
    assert mgr.get_event_recorder("widget-controller") is rec
    assert mgr.event_recorder("other") is not rec
    task = asyncio.create_task(mgr.start())
    await asyncio.sleep(0.05)
    rec.normal(widget(), "Started", "hello")
    mgr.request_stop()
    await asyncio.wait_for(task, 5)
    (event,) = stored_events(fake)
    assert event["reportingInstance"] == "pod-7" and event["reportingComponent"] == "widget-controller"
