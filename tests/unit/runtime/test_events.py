from jangar.runtime.client import Client
from jangar.runtime.events import EventRecorder
from tests.fakes.apiserver import FakeApiServer

EVENTS = "core/v1/events"


def widget() -> dict:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns", "uid": "u1", "resourceVersion": "7"},
    }


async def test_records_and_folds_repeats(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "widget-controller")
    rec.normal(widget(), "Created", "made a thing")
    await rec.flush()
    rec.normal(widget(), "Created", "made a thing")
    rec.warning(widget(), "Failed", "boom")
    await rec.flush()
    events = {k[2]: v for k, v in fake.objects.items() if k[0] == EVENTS}
    assert len(events) == 2
    created = next(e for e in events.values() if e["reason"] == "Created")
    assert created["count"] == 2
    assert created["involvedObject"] == {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": "w",
        "namespace": "ns",
        "uid": "u1",
        "resourceVersion": "7",
    }
    assert created["source"] == {"component": "widget-controller"}
    failed = next(e for e in events.values() if e["reason"] == "Failed")
    assert failed["type"] == "Warning" and failed["count"] == 1


async def test_failures_never_raise(client: Client, fake: FakeApiServer) -> None:
    rec = EventRecorder(client, "c")
    fake.fail_next(20, 403)
    rec.normal(widget(), "X", "y")
    await rec.flush()  # logged, not raised
    assert not [k for k in fake.objects if k[0] == EVENTS]
