"""kubectl-like short output of jangar's kinds from the registry: kind names (kind, plural, singular, short
name, any case) and the CRDs' printer columns evaluated on an object — what `agentctl get` prints.

The printer columns' JSONPaths are the two forms the registry uses: `.a.b.c` and
`.status.conditions[?(@.type=="X")].field`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jangar.api.registry import KINDS, KindInfo, PrinterColumn

__all__ = ["age", "column_value", "header", "kind_names", "resolve_kind", "row", "wide_message"]

_PARTS = re.compile(r"[^.\[]+(?:\[[^\]]*\])?")  # `.a.b[?(@.x=="y")].c` → a, b[?(@.x=="y")], c
_FILTER = re.compile(r'^(?P<list>[A-Za-z0-9_]+)\[\?\(@\.(?P<key>[A-Za-z0-9_]+)=="(?P<value>[^"]*)"\)\]$')


def kind_names(info: KindInfo) -> tuple[str, ...]:
    return (info.kind.lower(), info.plural, info.singular, *info.short_names)


def resolve_kind(name: str) -> KindInfo:
    """The kind a user typed (`AgentRun`, `agentruns`, `agentrun`, `ar`, ...); KeyError when none."""
    wanted = name.strip().lower()
    for info in KINDS:
        if wanted in kind_names(info):
            return info
    raise KeyError(name)


def _walk(value: Any, path: str) -> Any:
    for part in [p for p in _PARTS.findall(path) if p]:
        match = _FILTER.match(part)
        if match:
            items = value.get(match["list"]) if isinstance(value, Mapping) else None
            value = next(
                (
                    i
                    for i in items or ()
                    if isinstance(i, Mapping) and str(i.get(match["key"])) == match["value"]
                ),
                None,
            )
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            return None
    return value


def age(timestamp: str, now: datetime) -> str:
    """kubectl's short age: 45s, 12m, 3h, 2d."""
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def column_value(obj: Mapping[str, Any], column: PrinterColumn, now: datetime | None = None) -> str:
    value = _walk(obj, column.json_path)
    if value is None:
        return "<none>" if column.type != "date" else ""
    if column.type == "date" and isinstance(value, str):
        return age(value, now or datetime.now(UTC))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def wide_message(obj: Mapping[str, Any]) -> str:
    """The message of the condition that explains the object: Ready, else Succeeded."""
    conditions = (obj.get("status") or {}).get("conditions") or ()
    for type_ in ("Ready", "Succeeded"):
        for cond in conditions:
            if isinstance(cond, Mapping) and cond.get("type") == type_ and cond.get("message"):
                return str(cond["message"])
    return ""


def row(
    info: KindInfo, obj: Mapping[str, Any], *, wide: bool = False, now: datetime | None = None
) -> list[str]:
    """NAME and the printer columns (priority 0; all of them and MESSAGE when wide)."""
    columns = [c for c in info.printer_columns if wide or not c.priority]
    out = [str((obj.get("metadata") or {}).get("name") or "")]
    out += [column_value(obj, c, now) for c in columns]
    if wide:
        out.append(wide_message(obj))
    return out


def header(info: KindInfo, *, wide: bool = False) -> list[str]:
    columns = [c for c in info.printer_columns if wide or not c.priority]
    return ["NAME", *(c.name.upper() for c in columns), *(["MESSAGE"] if wide else [])]
