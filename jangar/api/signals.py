"""The `signals.proompteng.ai` group: Signal (a named channel) and SignalDelivery (one message on it)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from jangar.api import groups
from jangar.api.common import NameRef
from jangar.api.meta import KubeModel, OpenModel, Resource, ResourceStatus
from jangar.api.schema import FreeForm, Timestamp


class SignalSpec(OpenModel):
    channel: str | None = None
    description: str | None = None
    payload: FreeForm | None = None


class SignalStatus(ResourceStatus):
    last_delivery_at: Timestamp | None = None


class Signal(Resource[SignalSpec, SignalStatus]):
    """A named channel that orchestration steps can wait on."""

    GROUP: ClassVar[str] = groups.SIGNALS
    KIND: ClassVar[str] = "Signal"

    spec: SignalSpec = Field(default_factory=SignalSpec)
    status: SignalStatus | None = None


class SignalDeliverySpec(KubeModel):
    signal_ref: NameRef
    delivery_id: str | None = None
    payload: FreeForm | None = None


class SignalDeliveryStatus(ResourceStatus):
    delivered_at: Timestamp | None = None


class SignalDelivery(Resource[SignalDeliverySpec, SignalDeliveryStatus]):
    """One message delivered on a Signal."""

    GROUP: ClassVar[str] = groups.SIGNALS
    KIND: ClassVar[str] = "SignalDelivery"

    spec: SignalDeliverySpec
    status: SignalDeliveryStatus | None = None
