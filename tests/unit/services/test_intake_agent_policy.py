"""issue 13 item 3 (0.9.29 row 33): an Agent's allowedImplementationSourceProviders."""

from __future__ import annotations

from typing import Any

import pytest

from jangar.services.intake.agent_policy import provider_refusal


@pytest.mark.parametrize(
    ("security", "provider", "refused"),
    [
        (None, "github", False),
        ({"allowedImplementationSourceProviders": []}, "linear", False),
        ({"allowedImplementationSourceProviders": ["linear"]}, "linear", False),
        ({"allowedImplementationSourceProviders": ["linear"]}, "github", True),
    ],
)
def test_provider_refusal(security: dict[str, Any] | None, provider: str, refused: bool) -> None:
    agent = {"metadata": {"name": "a"}, "spec": {"security": security} if security else {}}
    why = provider_refusal(agent, provider)
    assert (why is not None) == refused
    if why:
        assert "allowedImplementationSourceProviders" in why and repr(provider) in why
