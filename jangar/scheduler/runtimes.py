"""Which `spec.runtime.type` values jangar can run.

`job` and `workflow` are native. `temporal` and `custom` exist in the CRD but are rejected with a clear
`UnsupportedRuntime` problem instead of the reference's half-implementations (a custom run never left
Running, §3.6), so a user learns at once rather than watching a run hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["KNOWN_RUNTIMES", "SUPPORTED_RUNTIMES", "RuntimeType", "runtime_type"]

RuntimeType = Literal["job", "workflow"]
SUPPORTED_RUNTIMES: frozenset[str] = frozenset({"job", "workflow"})
KNOWN_RUNTIMES: frozenset[str] = frozenset({"job", "workflow", "temporal", "custom"})


def runtime_type(run: Mapping[str, Any]) -> str | None:
    """`spec.runtime.type`, stripped and lower-cased; `None` when absent."""
    runtime = (run.get("spec") or {}).get("runtime")
    value = runtime.get("type") if isinstance(runtime, Mapping) else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None
