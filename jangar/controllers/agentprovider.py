"""AgentProvider: it needs a binary (the runner executes it); templates are rendered per run."""

from __future__ import annotations

from jangar.api.shape import as_list
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready
from jangar.runtime import JsonObject

__all__ = ["check_agent_provider"]


async def check_agent_provider(obj: JsonObject, env: CheckEnv) -> Verdict:
    spec = obj.get("spec") or {}
    binary = spec.get("binary")
    if not isinstance(binary, str) or not binary.strip():
        return invalid("MissingBinary", "spec.binary is required (the executable the runner starts)")
    for i, entry in enumerate(as_list(spec.get("inputFiles"))):
        if not isinstance(entry, dict) or not entry.get("path"):
            return invalid("InvalidInputFile", f"spec.inputFiles[{i}] needs a path")
    return ready("ValidSpec", f"binary {binary}")
