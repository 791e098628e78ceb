"""The `approvals.proompteng.ai` group: ApprovalPolicy, which ApprovalGate steps and submissions consult."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.common import Subject
from jangar.api.meta import OpenModel, Resource, ResourceStatus
from jangar.api.schema import Int32, Timestamp


class ApprovalPolicySpec(OpenModel):
    mode: str | None = None
    """For example manual or auto."""
    default_decision: str | None = None
    """For example allow or deny."""
    subjects: list[Subject] | None = None
    timeout_seconds: Int32 | None = Field(default=None, ge=0)
    """How long an ApprovalGate waits for a decision before `defaultDecision` applies (unset: forever)."""


class ApprovalPolicyStatus(ResourceStatus):
    last_decision_at: Timestamp | None = None


class ApprovalPolicy(Resource[ApprovalPolicySpec, ApprovalPolicyStatus]):
    """Who must approve what; consulted by ApprovalGate steps and by run submissions."""

    GROUP: ClassVar[str] = groups.APPROVALS
    KIND: ClassVar[str] = "ApprovalPolicy"

    spec: ApprovalPolicySpec = Field(default_factory=ApprovalPolicySpec)
    status: ApprovalPolicyStatus | None = None
