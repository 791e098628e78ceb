"""The implementation contract: the metadata map a run provides and the keys its implementation requires.

Reference §3.8. The metadata map is built from the run's parameters, normalised through built-in aliases
(`repo` → `repository`, `issue` → `issueNumber`, …) and the implementation's own `contract.mappings`, then
filled from the implementation (`source.externalId` of the form `owner/repo#N`, summary, text, url). It feeds
run.json, branch templates and the repository used for admission and VCS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jangar.api.shape import as_list

__all__ = [
    "BASE_KEYS",
    "HEAD_KEYS",
    "ContractResult",
    "build_metadata",
    "check_contract",
    "repository_of",
]

#: Built-in aliases, applied in order; a value is copied only when the target is empty.
_ALIASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("repo", "issueRepository"), "repository"),
    (("issue", "issueId", "issue_id", "issue_number"), "issueNumber"),
    (("title",), "issueTitle"),
    (("body",), "issueBody"),
    (("url",), "issueUrl"),
    (("baseBranch", "base_ref", "baseRef"), "base"),
    (("headBranch", "head_ref", "headRef"), "head"),
    (("workflowStage", "codexStage"), "stage"),
)

BASE_KEYS = ("base", "baseBranch", "base_ref", "baseRef")
HEAD_KEYS = ("head", "headBranch", "head_ref", "headRef", "branch")

_EXTERNAL_ID = re.compile(r"^(?P<repo>[^/\s#]+/[^/\s#]+)#(?P<num>\d+)$")
_KEY_MAX = 256


@dataclass(frozen=True)
class ContractResult:
    """`reason` is `None` when the contract holds, else `InvalidContract` or `MissingRequiredMetadata`."""

    metadata: dict[str, str]
    required_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    reason: str | None = None
    message: str = ""

    @property
    def status(self) -> dict[str, list[str]]:
        """The `status.contract` block."""
        return {"requiredKeys": list(self.required_keys), "missingKeys": list(self.missing_keys)}


def _contract(implementation: Mapping[str, Any]) -> Mapping[str, Any]:
    contract = implementation.get("contract")
    return contract if isinstance(contract, Mapping) else {}


def _copy_if_empty(metadata: dict[str, str], source: str, target: str) -> None:
    if not metadata.get(target) and metadata.get(source):
        metadata[target] = metadata[source]


def build_metadata(parameters: Mapping[str, Any], implementation: Mapping[str, Any]) -> dict[str, str]:
    """The metadata map (reference §3.8), ignoring malformed mappings (`check_contract` reports them)."""
    metadata = {
        str(k): v.strip()
        for k, v in parameters.items()
        if isinstance(v, str) and v.strip() and str(k).strip()
    }
    for sources, target in _ALIASES:
        for source in sources:
            _copy_if_empty(metadata, source, target)
    for mapping in as_list(_contract(implementation).get("mappings")):
        if isinstance(mapping, Mapping):
            src, dst = mapping.get("from"), mapping.get("to")
            if isinstance(src, str) and isinstance(dst, str) and src.strip() and dst.strip():
                _copy_if_empty(metadata, src.strip(), dst.strip())
    source_block = implementation.get("source")
    source_info = source_block if isinstance(source_block, Mapping) else {}
    external = source_info.get("externalId")
    if isinstance(external, str) and (match := _EXTERNAL_ID.match(external.strip())):
        metadata.setdefault("repository", match.group("repo"))
        metadata.setdefault("issueNumber", match.group("num"))
    fallbacks = {
        "issueTitle": implementation.get("summary"),
        "issueBody": implementation.get("text"),
        "issueUrl": source_info.get("url"),
        "url": source_info.get("url"),
        "prompt": implementation.get("text") or implementation.get("summary"),
    }
    for key, value in fallbacks.items():
        if not metadata.get(key) and isinstance(value, str) and value.strip():
            metadata[key] = value if key in {"issueBody", "prompt"} else value.strip()
    return metadata


def check_contract(parameters: Mapping[str, Any], implementation: Mapping[str, Any]) -> ContractResult:
    """Build the metadata and verify the implementation's `contract` against it."""
    metadata = build_metadata(parameters, implementation)
    contract = _contract(implementation)
    raw_required = as_list(contract.get("requiredKeys"))
    raw_mappings = as_list(contract.get("mappings"))
    problems: list[str] = []
    if not isinstance(raw_required, list):
        problems.append("contract.requiredKeys must be a list of strings")
        raw_required = []
    required: list[str] = []
    for key in raw_required:
        if not isinstance(key, str) or not key.strip() or len(key) > _KEY_MAX:
            problems.append(f"contract.requiredKeys has an invalid key {key!r}")
        else:
            required.append(key.strip())
    if not isinstance(raw_mappings, list):
        problems.append("contract.mappings must be a list")
        raw_mappings = []
    for index, mapping in enumerate(raw_mappings):
        ok = isinstance(mapping, Mapping) and all(
            isinstance(mapping.get(k), str) and mapping[k].strip() and len(mapping[k]) <= _KEY_MAX
            for k in ("from", "to")
        )
        if not ok:
            problems.append(f"contract.mappings[{index}] needs non-empty 'from' and 'to'")
    if problems:
        return ContractResult(metadata, required, [], "InvalidContract", "; ".join(problems))
    missing = [key for key in required if not metadata.get(key)]
    if missing:
        return ContractResult(
            metadata,
            required,
            missing,
            "MissingRequiredMetadata",
            f"missing required metadata: {', '.join(missing)} (set them as parameters or map them in "
            "the implementation's contract.mappings)",
        )
    return ContractResult(metadata, required, [])


def repository_of(run: Mapping[str, Any]) -> str | None:
    """The repository a run works on, lower-cased: `status.vcs.repository`, else the parameters.

    This is the key for per-repository admission limits, so it must be cheap and need no other objects.
    """
    status = run.get("status") if isinstance(run.get("status"), Mapping) else {}
    vcs = status.get("vcs") if isinstance(status, Mapping) else None
    candidates: list[Any] = [vcs.get("repository") if isinstance(vcs, Mapping) else None]
    spec = run.get("spec") if isinstance(run.get("spec"), Mapping) else {}
    params = spec.get("parameters") if isinstance(spec, Mapping) else None
    if isinstance(params, Mapping):
        candidates += [params.get("repository"), params.get("repo"), params.get("issueRepository")]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip().lower()
    return None
