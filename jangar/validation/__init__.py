"""Validation of AgentRuns against their references and the controller's policies (issue §2).

`resolve_run(run, lookup)` resolves agent → provider → implementation → memory from the cache and
`validate_agent_run(run, resolution, settings)` returns every `Problem` (reason + actionable message).
"""

from jangar.validation.agentrun import (
    check_image,
    check_labels,
    check_parameters,
    check_runtime_config,
    check_volumes,
    validate_agent_run,
)
from jangar.validation.patterns import glob_match, matches_any
from jangar.validation.problems import Problem, summarize
from jangar.validation.resolve import Lookup, ObjectLookup, Resolution, resolve_run, step_implementation
from jangar.validation.secrets import binding_allows, secret_problem

__all__ = [
    "Lookup",
    "ObjectLookup",
    "Problem",
    "Resolution",
    "binding_allows",
    "check_image",
    "check_labels",
    "check_parameters",
    "check_runtime_config",
    "check_volumes",
    "glob_match",
    "matches_any",
    "resolve_run",
    "secret_problem",
    "step_implementation",
    "summarize",
    "validate_agent_run",
]
