"""Head branches: `defaults.branchTemplate` and, when another active run already works on the same branch of
the same repository, `defaults.branchConflictSuffixTemplate` (reference §5.2 step 8).

The reference applied the conflict check only to `job` runs (§12.18); here both runtimes pass their active
runs, and the suffix is re-applied until the branch is free, so two concurrent runs never share a branch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jangar.api.contract import is_terminal
from jangar.api.shape import as_map
from jangar.scheduler.contract import HEAD_KEYS
from jangar.scheduler.templating import render_template

__all__ = ["FALLBACK_BRANCH_PREFIX", "branch_context", "branch_in_use", "resolve_head_branch"]

_MAX_SUFFIX_ROUNDS = 5
FALLBACK_BRANCH_PREFIX = "codex/"
"""0.9.29's fallback head branch is `codex/<run name>`: used when the branch template renders empty or with an
empty path segment (`codex/{{issueNumber}}` for a run without an issue gave `codex/`, which git refuses), and
for a read-write run that would otherwise have no branch at all."""


def _malformed(branch: str) -> bool:
    return any(not segment.strip() for segment in branch.split("/"))


def branch_context(
    run: Mapping[str, Any], parameters: Mapping[str, str], metadata: Mapping[str, str]
) -> dict[str, Any]:
    """Metadata and parameters at the top level, plus `agentRun`, `parameters`, `metadata` and `event`."""
    meta = as_map(run.get("metadata"))
    return {
        **dict(parameters),
        **dict(metadata),
        "agentRun": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "parameters": dict(parameters),
        "metadata": dict(metadata),
        "event": dict(metadata),
    }


def _branch_of(run: Mapping[str, Any]) -> str | None:
    vcs = as_map(run.get("status")).get("vcs") or {}
    for value in (vcs.get("headBranch"), vcs.get("branch")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    params = as_map(run.get("spec")).get("parameters") or {}
    for key in HEAD_KEYS:
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _repo_of(run: Mapping[str, Any]) -> str | None:
    vcs = as_map(run.get("status")).get("vcs") or {}
    params = as_map(run.get("spec")).get("parameters") or {}
    for value in (
        vcs.get("repository"),
        params.get("repository"),
        params.get("repo"),
        params.get("issueRepository"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def branch_in_use(
    branch: str, repository: str, others: Iterable[Mapping[str, Any]], *, self_uid: str | None, self_name: str
) -> bool:
    """Another active run (not finished) of the same repository uses `branch`."""
    for other in others:
        meta = as_map(other.get("metadata"))
        if (self_uid and meta.get("uid") == self_uid) or meta.get("name") == self_name:
            continue
        if is_terminal(as_map(other.get("status")).get("phase")):
            continue
        if _repo_of(other) == repository.lower() and _branch_of(other) == branch:
            return True
    return False


def resolve_head_branch(
    *,
    run: Mapping[str, Any],
    defaults: Mapping[str, Any],
    parameters: Mapping[str, str],
    metadata: Mapping[str, str],
    repository: str,
    active_runs: Iterable[Mapping[str, Any]],
    writes: bool = False,
) -> str | None:
    """The head branch: metadata `head`, else the rendered `branchTemplate` (or `codex/<run>` when that renders
    malformed, or when a writing run would have none); de-conflicted with the suffix."""
    context = branch_context(run, parameters, metadata)
    head = (metadata.get("head") or "").strip()
    template = defaults.get("branchTemplate")
    templated = not head and isinstance(template, str) and bool(template.strip())
    if templated:
        head = render_template(str(template), context).strip()
    if (templated or writes) and (not head or _malformed(head)):
        head = f"{FALLBACK_BRANCH_PREFIX}{as_map(run.get('metadata')).get('name')}"
    if not head:
        return None
    suffix_template = defaults.get("branchConflictSuffixTemplate")
    if not isinstance(suffix_template, str) or not suffix_template.strip():
        return head
    others = list(active_runs)
    meta = as_map(run.get("metadata"))
    for _ in range(_MAX_SUFFIX_ROUNDS):
        if not branch_in_use(
            head, repository, others, self_uid=meta.get("uid"), self_name=str(meta.get("name"))
        ):
            break
        suffix = (
            render_template(suffix_template, context | {"branch": head, "headBranch": head})
            .strip()
            .lstrip("-/")
        )
        if not suffix:
            break
        head = f"{head}{suffix}" if head.endswith(("/", "-")) else f"{head}-{suffix}"
    return head
