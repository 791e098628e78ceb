"""Structured logging for the runtime and everything built on it.

JSON lines in production (one object per line, easy to ship), a readable console renderer
when stderr is a terminal. Per-reconcile context (controller, namespace, name,
reconcile_id) is bound with :func:`bind_reconcile_context` through contextvars, so every
log line emitted while a reconcile runs, in any module, carries it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(json: bool | None = None, level: str = "info") -> None:
    """Configure structlog (and route stdlib ``logging`` through the same format).

    ``json=None`` picks JSON unless stderr is a TTY.
    """
    if json is None:
        json = not sys.stderr.isatty()
    lvl = _LEVELS.get(level.lower(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info if json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(lvl)


@contextmanager
def bind_reconcile_context(
    controller: str, namespace: str | None, name: str, reconcile_id: str
) -> Iterator[None]:
    """Bind reconcile context to every log line emitted inside the block (task-local)."""
    with structlog.contextvars.bound_contextvars(
        controller=controller, namespace=namespace or "", name=name, reconcile_id=reconcile_id
    ):
        yield
