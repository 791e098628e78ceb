"""ImplementationSpec: the reference's size limits and a well-formed contract (§3.10)."""

from __future__ import annotations

from jangar.api.shape import as_list
from jangar.controllers.supporting import CheckEnv, Verdict, invalid, ready
from jangar.runtime import JsonObject
from jangar.scheduler import check_contract

__all__ = ["check_implementation_spec"]

MAX_TEXT_CHARS = 131_072
MAX_SUMMARY_CHARS = 256
MAX_DESCRIPTION_BYTES = 128 * 1024
MAX_ACCEPTANCE_CRITERIA = 50


async def check_implementation_spec(obj: JsonObject, env: CheckEnv) -> Verdict:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    text = spec.get("text")
    if not isinstance(text, str) or not text.strip():
        return invalid("MissingText", "spec.text is required")
    if len(text) > MAX_TEXT_CHARS:
        return invalid("TextTooLarge", f"spec.text has {len(text)} characters; at most {MAX_TEXT_CHARS}")
    summary = spec.get("summary")
    if isinstance(summary, str) and len(summary) > MAX_SUMMARY_CHARS:
        return invalid(
            "SummaryTooLong", f"spec.summary has {len(summary)} characters; at most {MAX_SUMMARY_CHARS}"
        )
    description = spec.get("description")
    if isinstance(description, str) and len(description.encode()) > MAX_DESCRIPTION_BYTES:
        return invalid("DescriptionTooLarge", f"spec.description exceeds {MAX_DESCRIPTION_BYTES} bytes")
    criteria = as_list(spec.get("acceptanceCriteria"))
    if len(criteria) > MAX_ACCEPTANCE_CRITERIA:
        return invalid(
            "AcceptanceCriteriaTooLong",
            f"spec.acceptanceCriteria has {len(criteria)} entries; at most {MAX_ACCEPTANCE_CRITERIA}",
        )
    contract = check_contract({}, spec)
    if contract.reason == "InvalidContract":
        return invalid("InvalidContract", contract.message)
    # syncedAt is set once (when first seen valid) and never restamped: no timestamp churn.
    fields = {} if status.get("syncedAt") else {"syncedAt": obj["metadata"].get("creationTimestamp")}
    return ready("ValidSpec", "implementation is valid", fields=fields)
