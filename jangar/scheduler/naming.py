"""Deterministic names and label values for everything a run creates.

The reference had three truncation functions (63 with a hash, 50, 45) and used the raw run name as a label
value, so a run name over 63 characters broke Job creation (§12.15). Here there is one rule, used for Job
names, ConfigMap names, volume names and label values: sanitise, and if the result is too long cut it and
append 8 hex digits of the SHA-1 of the full, unshortened name, so two long names that share a prefix still
get different, stable results.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "MAX_NAME_LENGTH",
    "StepKey",
    "auth_volume_names",
    "configmap_volume_name",
    "dns_label",
    "inputs_configmap_name",
    "job_name",
    "label_value",
    "shorten",
    "spec_configmap_name",
    "step_suffix",
]

MAX_NAME_LENGTH = 63
_HASH_LENGTH = 8
_NAME_INVALID = re.compile(r"[^a-z0-9-]+")
_LABEL_INVALID = re.compile(r"[^a-z0-9_.-]+")


def shorten(value: str, limit: int = MAX_NAME_LENGTH, *, separator: str = "-") -> str:
    """Cut `value` to `limit` characters, replacing the tail with a stable hash of the whole value."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()[:_HASH_LENGTH]
    head = value[: limit - _HASH_LENGTH - len(separator)].rstrip("-_.")
    return f"{head}{separator}{digest}"


def dns_label(*parts: str, limit: int = MAX_NAME_LENGTH) -> str:
    """A DNS-1123 label built from `parts` joined by `-` (lower-cased, invalid runs turned into `-`)."""
    joined = "-".join(p for p in parts if p)
    cleaned = _NAME_INVALID.sub("-", joined.lower()).strip("-")
    return shorten(cleaned or "x", limit)


def label_value(value: str | None) -> str:
    """A valid label value: lower-cased, invalid runs → `-`, alphanumeric at both ends, ≤63 chars.

    Shortening hashes the *sanitised* value so the reconciler can compute the same value for a selector.
    """
    text = value if isinstance(value, str) else ""  # a non-string (bad input past the schema) is unknown
    cleaned = _LABEL_INVALID.sub("-", text.lower())
    cleaned = re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", cleaned)
    if not cleaned:
        return "unknown"
    short = shorten(cleaned)
    return re.sub(r"[^a-z0-9]+$", "", short) or "unknown"


StepKey = tuple[int, ...]
"""(step index, attempt) or, for an iteration of a looping step, (step index, attempt, iteration)."""


def step_suffix(step_index: int, attempt: int, iteration: int = 0) -> str:
    """`step-<i>-attempt-<n>`, i 1-based, as in the reference's workflow runtime (§3.3); an iteration
    `k` >= 1 of a looping step is `step-<i>-iter-<k>-attempt-<n>`, so every iteration's Job has its own
    deterministic name and a restart adopts instead of duplicating."""
    if iteration > 0:
        return f"step-{step_index}-iter-{iteration}-attempt-{attempt}"
    return f"step-{step_index}-attempt-{attempt}"


def job_name(run_name: str, step: StepKey | None = None) -> str:
    """`<run>-job`, or `<run>-step-<i>-attempt-<n>` for a workflow step (index 1-based, attempt ≥ 1)."""
    if step is None:
        return dns_label(run_name, "job")
    return dns_label(run_name, step_suffix(*step))


def spec_configmap_name(run_name: str, step: StepKey | None = None) -> str:
    return dns_label(run_name, "spec", step_suffix(*step) if step else "")


def inputs_configmap_name(run_name: str, step: StepKey | None = None) -> str:
    return dns_label(run_name, "inputs", step_suffix(*step) if step else "")


def configmap_volume_name(configmap_name: str) -> str:
    return dns_label(configmap_name, "vol")


def auth_volume_names(run_name: str, step: StepKey | None = None) -> tuple[str, str]:
    """(`<run>-auth-home`, `<run>-auth-secret`), with the step suffix for workflow steps."""
    suffix = step_suffix(*step) if step else ""
    return dns_label(run_name, "auth-home", suffix), dns_label(run_name, "auth-secret", suffix)
