"""Early refusal for submission surfaces (HTTP API, agentctl): would the controller reject a new run?

The API should answer 429 for exactly the runs the controller would end with `QueueLimitExceeded`, no more
and no less, so it asks the same decision function with a candidate record appended (created now, so it is
the newest), instead of re-implementing the queue limits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from jangar.admission.decide import Rejection, decide
from jangar.admission.model import AdmissionLimits, RunRecord
from jangar.admission.window import Stamp

__all__ = ["submission_rejection"]

_CANDIDATE = "\x00candidate"  # not a valid object name, so it never collides with a real run


def submission_rejection(
    records: Iterable[RunRecord],
    limits: AdmissionLimits,
    *,
    namespace: str,
    agent: str,
    repository: str | None,
    now: datetime,
    admissions: Mapping[str, Stamp] | None = None,
) -> Rejection | None:
    """The `Rejection` a run submitted now would get (queue full), or `None` if it would be queued/admitted."""
    candidate = RunRecord(
        namespace, _CANDIDATE, now, agent=agent, repository=repository.lower() if repository else None
    )
    decision = decide([*records, candidate], limits, now, admissions)
    return decision.rejected.get(candidate.key)
