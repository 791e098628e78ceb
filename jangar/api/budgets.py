"""The `budgets.proompteng.ai` group: Budget, limits on tokens, money and compute, and their usage."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.meta import KubeModel, OpenModel, Resource, ResourceStatus


class BudgetAmounts(OpenModel):
    """Amounts as strings (quantities for cpu, memory and gpu); other keys are kept."""

    tokens: str | None = None
    dollars: str | None = None
    cpu: str | None = None
    memory: str | None = None
    gpu: str | None = None


class BudgetSpec(KubeModel):
    limits: BudgetAmounts | None = None


class BudgetStatus(ResourceStatus):
    used: BudgetAmounts | None = None


class Budget(Resource[BudgetSpec, BudgetStatus]):
    """Limits on tokens, money and compute, and the usage counted against them."""

    GROUP: ClassVar[str] = groups.BUDGETS
    KIND: ClassVar[str] = "Budget"

    spec: BudgetSpec = Field(default_factory=BudgetSpec)
    status: BudgetStatus | None = None
