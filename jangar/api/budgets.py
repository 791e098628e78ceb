"""The `budgets.proompteng.ai` group: Budget, limits on tokens, money and compute, and their usage."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.meta import KubeModel, OpenModel, Resource, ResourceStatus
from jangar.api.schema import Int32, Timestamp


class BudgetAmounts(OpenModel):
    """Amounts as strings (quantities for cpu, memory and gpu); other keys are kept."""

    tokens: str | None = None
    dollars: str | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None


class BudgetSpec(KubeModel):
    limits: BudgetAmounts | None = None
    """cpu in core-seconds, memory in byte-seconds, gpu in GPU-seconds (Kubernetes quantities), tokens,
    dollars. Usage reaching a limit holds new runs."""
    window: str | None = None
    """A sliding window (`24h`, `30m`, `7d`, `1h30m`, or seconds): only runs finished inside it count, plus
    the runs still running. Unset: every run counts for ever."""


class BudgetLedgerEntry(KubeModel):
    """The usage of one finished run, kept after the run is deleted."""

    uid: str
    kind: str | None = None
    name: str | None = None
    finished_at: Timestamp
    tokens: str | None = None
    dollars: str | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None


class BudgetCarried(KubeModel):
    """Usage of older finished runs folded out of `runs` (the ledger is bounded)."""

    runs: Int32 | None = Field(default=None, ge=0)
    until: Timestamp | None = None
    """The newest finish folded in; with a window the sum expires when this leaves it."""
    tokens: str | None = None
    dollars: str | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None


class BudgetStatus(ResourceStatus):
    used: BudgetAmounts | None = None
    """Usage now, in the units of `spec.limits`."""
    window_start: Timestamp | None = None
    """The start of the window `used` covers (with `spec.window`)."""
    runs: list[BudgetLedgerEntry] | None = None
    """Finished runs counted, newest first, by uid."""
    carried: BudgetCarried | None = None


class Budget(Resource[BudgetSpec, BudgetStatus]):
    """Limits on tokens, money and compute, and the usage counted against them."""

    GROUP: ClassVar[str] = groups.BUDGETS
    KIND: ClassVar[str] = "Budget"

    spec: BudgetSpec = Field(default_factory=BudgetSpec)
    status: BudgetStatus | None = None
