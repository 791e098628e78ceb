"""Admission backpressure for AgentRuns: concurrency, rate and queue limits (issue §3, reference §4).

`decide()` is the pure decision over a snapshot of `RunRecord`s; `AdmissionLedger` wraps it with
reservations so several workers never admit past a limit. See docs/admission.md.
"""

from jangar.admission.decide import AdmissionDecision, Rejection, Waiting, decide
from jangar.admission.ledger import AdmissionLedger, Admit, Verdict
from jangar.admission.model import WAIT_REQUEUE_SECONDS, AdmissionLimits, RunKey, RunRecord
from jangar.admission.submission import submission_rejection

__all__ = [
    "WAIT_REQUEUE_SECONDS",
    "AdmissionDecision",
    "AdmissionLedger",
    "AdmissionLimits",
    "Admit",
    "Rejection",
    "RunKey",
    "RunRecord",
    "Verdict",
    "Waiting",
    "decide",
    "submission_rejection",
]
