"""``{{ a.b.c }}`` placeholders, rendered exactly as the reference controller renders them (§3.3).

A dotted path is looked up in the context; a missing or null value renders as ``""`` and a non-string
value as its JSON. Rendering is a single pass: text a placeholder produces is never rendered again, so an
issue body containing ``{{`` cannot inject lookups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` in ``context`` (list indexes allowed), or None."""
    current: Any = context
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return None
        if current is None:
            return None
    return current


def render(template: str, context: Mapping[str, Any]) -> str:
    """Replace every ``{{ path }}`` in ``template`` with its value from ``context``."""

    def replace(match: re.Match[str]) -> str:
        value = lookup(context, match.group(1)) if match.group(1) else None
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":"))

    return _PLACEHOLDER.sub(replace, template)
