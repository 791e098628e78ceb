"""AgentRun spec immutability after acceptance (0.9.29 row 7), pure.

When a run is accepted (its Job or first workflow step exists) the fields that decide what runs are hashed
into `status.specHash`, with one short digest per field in `status.specFieldHashes` so a later violation can
name what changed. A run whose fields no longer match has been edited under a running runtime: with
`JANGAR_AGENTRUN_SPEC_IMMUTABILITY_ENFORCED` (default) the runtime is stopped and the run fails
`SpecImmutableViolation`; otherwise it keeps running with a Warning condition (and one Event).

Only spec fields count: status and metadata edits (labels, the cancel annotation) never change the hash.
`ttlSecondsAfterFinished`, `budgetRef` and `idempotencyKey` are left out: they do not change what the
runtime does once it runs. Finished runs are never checked, and a run accepted before the upgrade has no
hash: it is adopted (recorded on its next pass), never failed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HASH_PREFIX",
    "IMMUTABLE_FIELDS",
    "REASON_SPEC_CHANGED",
    "REASON_SPEC_IMMUTABLE",
    "SpecChange",
    "spec_change",
    "spec_hashes",
]

REASON_SPEC_IMMUTABLE = "SpecImmutableViolation"
REASON_SPEC_CHANGED = "SpecChangedAfterAcceptance"
HASH_PREFIX = "sha256:"

IMMUTABLE_FIELDS = (
    "agentRef",
    "implementationSpecRef",
    "implementation",
    "runtime",
    "parameters",
    "secrets",
    "memoryRef",
    "vcsRef",
    "vcsPolicy",
    "workload",
    "workflow",
    "workspaceRef",
    "goal",
    "systemPrompt",
    "systemPromptRef",
)
_FIELD_DIGEST = 16


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_hashes(spec: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """(`status.specHash`, `status.specFieldHashes`) of a run spec: an absent field hashes as absent.

    Each present field is serialised and hashed once; the whole hash is the sha256 of the `field=digest`
    lines, so checking a run on every pass costs one pass over its spec."""
    digests = {
        f: hashlib.sha256(_canonical(spec[f]).encode()).hexdigest()
        for f in IMMUTABLE_FIELDS
        if spec.get(f) is not None
    }
    lines = "".join(f"{f}={d}\n" for f, d in digests.items())
    whole = HASH_PREFIX + hashlib.sha256(lines.encode()).hexdigest()
    return whole, {f: d[:_FIELD_DIGEST] for f, d in digests.items()}


@dataclass(frozen=True)
class SpecChange:
    """An accepted run's spec no longer matches its recorded hash."""

    fields: tuple[str, ...]
    """The changed fields (`spec.x`), or empty when the record has no per-field digests."""

    @property
    def message(self) -> str:
        what = ", ".join(self.fields) if self.fields else "the spec"
        return (
            f"{what} changed after the run was accepted (status.specHash); an accepted AgentRun's spec is "
            "immutable: create a new AgentRun for the new spec"
        )


def spec_change(run: Mapping[str, Any]) -> SpecChange | None:
    """The change of an accepted run's immutable fields since acceptance; None when unchanged or when no
    hash was recorded (not accepted yet, or accepted before the upgrade: adopted, not failed)."""
    status = run.get("status") or {}
    recorded = status.get("specHash")
    if not isinstance(recorded, str) or not recorded:
        return None
    current, per_field = spec_hashes(run.get("spec") or {})
    if current == recorded:
        return None
    old = status.get("specFieldHashes")
    old_fields: Mapping[str, Any] = old if isinstance(old, Mapping) else {}
    changed = tuple(
        f"spec.{f}" for f in IMMUTABLE_FIELDS if old_fields and per_field.get(f) != old_fields.get(f)
    )
    return SpecChange(changed)
