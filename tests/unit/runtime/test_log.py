import json
import logging

import pytest
import structlog

from jangar.runtime.log import bind_reconcile_context, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_reconcile_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="info")
    log = structlog.get_logger("test")
    with bind_reconcile_context("widget", "ns", "w1", "rid-1"):
        log.info("reconciling", step=1)
    log.debug("hidden")  # below the level
    log.info("outside")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    inside, outside = lines
    assert inside["event"] == "reconciling" and inside["level"] == "info" and inside["step"] == 1
    assert (inside["controller"], inside["namespace"], inside["name"], inside["reconcile_id"]) == (
        "widget",
        "ns",
        "w1",
        "rid-1",
    )
    assert "timestamp" in inside
    assert "controller" not in outside  # context is scoped to the block


def test_stdlib_logging_goes_through_the_same_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True, level="warning")
    logging.getLogger("aiohttp.access").warning("from stdlib")
    logging.getLogger("aiohttp.access").info("too low")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["from stdlib"]


def test_console_renderer_when_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=False)
    structlog.get_logger("test").info("hello", key="value")
    err = capsys.readouterr().err
    assert "hello" in err and "key=value" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err.splitlines()[0])
