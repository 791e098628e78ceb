"""Tool: usable when it has an image, a command or args, valid env names and known placeholders.

Phase `Ready` (`Ready=True/ValidSpec`) or `Invalid` (`Ready=False`, `InvalidSpec=True` with the first
problem's reason: `MissingImage`, `MissingCommand`, `InvalidEnvName`, `DuplicateEnvName`, `InvalidTemplate`;
every problem is in the message). The rules are `jangar.scheduler.toolrun_job.tool_problems`, the same ones
a ToolRun checks before it builds its Job, so a Tool that reads Ready is one a ToolRun can run.
"""

from __future__ import annotations

from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready
from jangar.runtime import JsonObject
from jangar.scheduler.toolrun_job import tool_problems

__all__ = ["check_tool"]


async def check_tool(obj: JsonObject, env: CheckEnv) -> Verdict:
    problems = tool_problems(obj)
    if problems:
        return invalid(problems[0].reason, "; ".join(p.message for p in problems))
    return ready("ValidSpec", "tool ready")
