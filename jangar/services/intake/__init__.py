"""Issue intake: ImplementationSource webhooks (GitHub, Linear) → ImplementationSpecs (reference §6.9).

`events` parses and matches payloads (pure), `signature` checks HMACs in constant time, `intake` holds the
bounded, de-duplicating queue and its worker. The route is `jangar.server.webhooks_api`; see docs/intake.md.
"""

from jangar.services.intake.events import IssueEvent, PayloadError, idempotency_key, parse_event, spec_name
from jangar.services.intake.intake import IntakeResponse, WebhookIntake, WorkItem
from jangar.services.intake.signature import sign_github, sign_linear, verify

__all__ = [
    "IntakeResponse",
    "IssueEvent",
    "PayloadError",
    "WebhookIntake",
    "WorkItem",
    "idempotency_key",
    "parse_event",
    "sign_github",
    "sign_linear",
    "spec_name",
    "verify",
]
