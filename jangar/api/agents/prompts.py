"""System prompt references (0.9.29), shared by the Agent (which owns the prompt) and the AgentRun (whose
schema names the fields only to refuse them with a clear message)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jangar.api.meta import KubeModel

__all__ = ["MAX_SYSTEM_PROMPT", "SystemPromptRef"]

#: The inline system prompt limit of the 0.9.29 reference (16 KiB); a longer prompt goes in a ConfigMap.
MAX_SYSTEM_PROMPT = 16384


class SystemPromptRef(KubeModel):
    """Where a system prompt longer than the inline limit (or a secret one) lives, in the Agent's namespace."""

    kind: Literal["Secret", "ConfigMap"]
    name: str = Field(min_length=1)
    key: str | None = None
    """Key inside the object; `systemPrompt` when unset."""
