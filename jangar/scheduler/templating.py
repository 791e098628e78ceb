"""`{{ dotted.path }}` templates for provider args/env, input files and VCS branch templates (§3.3).

Deliberately tiny and total: a missing or null value renders as "", a non-string value as its JSON, and
nothing can execute code. That is the reference's contract, and it means a bad template produces a visible
empty string in the agent's input rather than a failed reconcile. `jangar.runner.template.render` follows the
same rules (for hand-written runner specs); the tests of both pin them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["lookup", "references", "render_strict", "render_template"]

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """Resolve `a.b.c` in nested mappings (and list indexes); `None` when any segment is missing."""
    current: Any = context
    for segment in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(segment)
        elif isinstance(current, list | tuple) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return None
        if current is None:
            return None
    return current


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def render_template(template: str, context: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: _to_text(lookup(context, m.group(1))) if m.group(1) else "", template)


def references(template: str) -> list[str]:
    """The dotted paths of the placeholders in `template`, in order (empty placeholders left out)."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]


def render_strict(template: str, context: Mapping[str, Any]) -> tuple[str, list[str]]:
    """`render_template`, plus the paths that resolved to nothing (missing or null), for callers where an
    empty string would hide a mistake (orchestration step inputs fail the step instead)."""
    missing = [path for path in references(template) if lookup(context, path) is None]
    return render_template(template, context), missing
