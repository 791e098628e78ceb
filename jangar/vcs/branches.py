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

__all__ = ["branch_context", "branch_in_use", "resolve_head_branch"]

_MAX_SUFFIX_ROUNDS = 5


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
) -> str | None:
    """The head branch: metadata `head`, else the rendered `branchTemplate`; de-conflicted with the suffix."""
    context = branch_context(run, parameters, metadata)
    head = (metadata.get("head") or "").strip()
    template = defaults.get("branchTemplate")
    if not head and isinstance(template, str) and template.strip():
        head = render_template(template, context).strip()
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
