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

__all__ = ["lookup", "placeholder_paths", "render_template", "unresolved_paths"]

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


def unresolved_paths(template: str, context: Mapping[str, Any]) -> list[str]:
    """The placeholder paths in `template` that resolve to nothing (missing or null), in order, once each.

    For callers that must not render a missing value as "" (a ToolRun's command fails with a clear
    reason instead of running with an empty argument).
    """
    missing = [p for p in placeholder_paths(template) if lookup(context, p) is None]
    return list(dict.fromkeys(missing))


def placeholder_paths(template: str) -> list[str]:
    """The dotted paths of the non-empty `{{ … }}` placeholders in `template`, in order."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)]
