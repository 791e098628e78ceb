"""CEL loop conditions of workflow steps (0.9.29 `workflow.steps[].loop.condition.cel`), through cel-python.

Two uses, one parser: admission compiles the expression (`condition_error`), so a typo fails the run at
once with `InvalidLoopCondition` instead of after the first iteration ran; the workflow planner evaluates it
over the loop-control object an iteration reported (`evaluate_condition`). A condition must yield a bool;
anything else (an error, a missing key, a number) is "invalid control data", which the step's
`onInvalidControl` policy turns into a stop or a failure.

Variables: `control` (the loop-control JSON object), `iteration` (1-based, the iteration that just ended)
and `maxIterations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import celpy

__all__ = [
    "MAX_CONDITION_LENGTH",
    "MAX_MACRO_NESTING",
    "ConditionResult",
    "condition_error",
    "evaluate_condition",
]

MAX_CONDITION_LENGTH = 1024
"""Longest condition accepted (also the CRD's maxLength)."""
MAX_MACRO_NESTING = 1
"""Comprehension macros (`map`, `filter`, `all`, `exists`, `exists_one`) may not nest: cel-python has no
cost limit and evaluates on the controller's event loop, where three nested `map()`s over 20-element lists
took 0.58 s and each further level multiplies that by the list length. One level keeps a condition linear in
the size of the control data (at most 2 KiB)."""
_MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    """The CEL environment, built on first use: importing cel-python and building its parser takes about
    0.6 s, which every jangar process (agentctl, render, the runner's image) would otherwise pay at import
    even when no run has a loop."""
    import celpy

    return celpy.Environment()


@lru_cache(maxsize=256)
def _program(expression: str) -> celpy.Runner:
    """The compiled program of `expression`; `CELParseError` when it does not parse. Cached: the planner
    runs many times per iteration, the expression rarely changes."""
    env = _environment()
    return env.program(env.compile(expression))


def _macro_nesting(tree: Any) -> int:
    """The deepest nesting of comprehension macros in a cel-python (lark) parse tree."""
    children = [c for c in getattr(tree, "children", ()) if hasattr(c, "children")]
    deepest = max((_macro_nesting(c) for c in children), default=0)
    if getattr(tree, "data", None) == "member_dot_arg":
        names = [str(c) for c in getattr(tree, "children", ()) if not hasattr(c, "children")]
        if any(name in _MACROS for name in names):
            return deepest + 1
    return deepest


@lru_cache(maxsize=256)
def _nesting(expression: str) -> int:
    return _macro_nesting(_environment().compile(expression))


def condition_error(expression: str) -> str | None:
    """Why `expression` is not a valid CEL expression (or too costly to evaluate), or `None` when it
    compiles within the limits."""
    from celpy.celparser import CELParseError

    if len(expression) > MAX_CONDITION_LENGTH:
        return f"the condition has {len(expression)} characters; at most {MAX_CONDITION_LENGTH} are allowed"
    try:
        _program(expression)
        nesting = _nesting(expression)
    except CELParseError as exc:
        column = getattr(exc, "column", None)
        where = f" at column {column}" if isinstance(column, int) else ""
        return f"syntax error{where} in {expression!r}"
    except Exception as exc:  # cel-python raises a few other types for odd input; report, never crash
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if nesting > MAX_MACRO_NESTING:
        return (
            f"comprehension macros (map, filter, all, exists, exists_one) nest {nesting} deep in "
            f"{expression!r}; at most {MAX_MACRO_NESTING} level is allowed (evaluation cost)"
        )
    return None


@dataclass(frozen=True)
class ConditionResult:
    """`value` is the bool the condition gave, or `None` with `error` saying why it gave none."""

    value: bool | None
    error: str = ""


def _short(error: BaseException, limit: int = 300) -> str:
    """The first argument of a cel-python error, without the dump of the activation it appends."""
    text = str(error.args[0]) if error.args else str(error)
    flat = " ".join(text.split(" (in activation")[0].split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def evaluate_condition(
    expression: str, control: Mapping[str, Any], *, iteration: int, max_iterations: int
) -> ConditionResult:
    """Evaluate the loop condition over one iteration's control data."""
    from celpy import celtypes
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    error = condition_error(expression)
    if error is not None:
        return ConditionResult(None, f"invalid CEL: {error}")
    activation = {
        "control": json_to_cel(dict(control)),
        "iteration": celtypes.IntType(iteration),
        "maxIterations": celtypes.IntType(max_iterations),
    }
    try:
        result = _program(expression).evaluate(activation)
    except CELEvalError as exc:
        return ConditionResult(None, f"condition failed to evaluate: {_short(exc)}")
    except Exception as exc:  # a library error over user data must not fail the reconcile
        return ConditionResult(None, f"condition failed to evaluate: {type(exc).__name__}: {_short(exc)}")
    if isinstance(result, CELEvalError):
        return ConditionResult(None, f"condition failed to evaluate: {_short(result)}")
    if isinstance(result, bool | celtypes.BoolType):
        return ConditionResult(bool(result))
    kind = type(result).__name__.removesuffix("Type").lower()
    return ConditionResult(None, f"condition gave a {kind}, not a bool")
