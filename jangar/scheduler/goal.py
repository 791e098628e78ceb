"""`spec.goal` (0.9.29 row 6): the run's objective and optional token budget, handed to the agent.

It reaches the pod three ways, so any agent can use it: `run.json` `goal` (what jangar-runner prints and an
agent reading its run spec sees), templates as `{{goal.objective}}` / `{{goal.tokenBudget}}`, and the env
vars `JANGAR_GOAL_OBJECTIVE` / `JANGAR_GOAL_TOKEN_BUDGET` (with their 0.9.29 `AGENTS_` names). The objective
is user text, never a secret, so a literal env value is fine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jangar.api.shape import as_map

__all__ = ["GOAL_OBJECTIVE_ENV", "GOAL_TOKEN_BUDGET_ENV", "goal_env", "run_goal"]

GOAL_OBJECTIVE_ENV = "JANGAR_GOAL_OBJECTIVE"
GOAL_TOKEN_BUDGET_ENV = "JANGAR_GOAL_TOKEN_BUDGET"


def run_goal(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """`{objective, tokenBudget?}` from a run spec, or None when it has no usable goal."""
    goal = as_map(spec.get("goal"))
    objective = goal.get("objective")
    if not isinstance(objective, str) or not objective.strip():
        return None
    out: dict[str, Any] = {"objective": objective}
    budget = goal.get("tokenBudget")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        out["tokenBudget"] = budget
    return out


def goal_env(spec: Mapping[str, Any]) -> list[dict[str, str]]:
    """The goal's env vars (both names), empty without a goal."""
    goal = run_goal(spec)
    if goal is None:
        return []
    values = {GOAL_OBJECTIVE_ENV: goal["objective"]}
    if "tokenBudget" in goal:
        values[GOAL_TOKEN_BUDGET_ENV] = str(goal["tokenBudget"])
    env: list[dict[str, str]] = []
    for name, value in values.items():
        env.append({"name": name, "value": value})
        env.append({"name": "AGENTS_" + name.removeprefix("JANGAR_"), "value": value})
    return env
