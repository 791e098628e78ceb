"""A validation problem: a condition reason plus a message a user can act on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Problem", "summarize"]


@dataclass(frozen=True)
class Problem:
    """`reason` is CamelCase (it becomes the condition reason); `field` points at the offending spec path."""

    reason: str
    message: str
    field: str | None = None


def summarize(problems: Sequence[Problem]) -> tuple[str, str]:
    """(reason, message) for one `InvalidSpec` condition: the first reason, every message joined by `; `."""
    if not problems:
        return "Valid", ""
    return problems[0].reason, "; ".join(p.message for p in problems)
