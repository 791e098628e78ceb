"""Read an Agent's system prompt for a run that may start a Job now (issue 13 item 3).

Inline prompts come from the cached Agent. A `systemPromptRef` is read from the API server: Secrets and
ConfigMaps are not cached by jangar (their content is not the controller's business), so, like the VCS
credentials' key names, the object is read only on a pass that builds a Job (submission, a workflow step, a
lost Job), never on the observation hot path. A Secret's content is hashed here and dropped: it reaches no
log, Event, status field or Job env, only the pod through a Secret volume.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jangar.runtime import Client, NotFoundError
from jangar.runtime.resources import CONFIGMAPS, SECRETS
from jangar.scheduler.system_prompt import PromptSource, SystemPrompt, agent_prompt_source, sha256_text
from jangar.validation import Lookup, Problem

__all__ = ["PROMPT_NOT_FOUND", "PromptRead", "prompt_from_objects", "read_system_prompt", "resolve_prompt"]

#: a referenced prompt object or key is missing: held for the reference grace, like a missing Agent
PROMPT_NOT_FOUND = "SystemPromptNotFound"


@dataclass(frozen=True)
class PromptRead:
    """The Agent's prompt as read this pass: `prompt` when resolved, else `problem` (or neither when the
    Agent has no prompt)."""

    source: PromptSource | None
    prompt: SystemPrompt | None = None
    problem: Problem | None = None


def _decoded(data: Mapping[str, Any], key: str, secret: bool) -> str | None:
    raw = data.get(key)
    if not isinstance(raw, str):
        return None
    if not secret:
        return raw
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _resolved(source: PromptSource, text: str | None) -> PromptRead:
    field = "spec.defaults.systemPromptRef" if source.kind != "inline" else "spec.defaults.systemPrompt"
    if text is None:
        return PromptRead(
            source,
            problem=Problem(
                PROMPT_NOT_FOUND,
                f"the Agent's system prompt ({source.where}) does not exist or is not UTF-8 text",
                field=field,
            ),
        )
    if not text.strip():
        return PromptRead(
            source,
            problem=Problem(
                "MissingSystemPromptConfiguration",
                f"the Agent's system prompt ({source.where}) is empty",
                field=field,
            ),
        )
    kept = None if source.kind == "Secret" else text
    return PromptRead(source, SystemPrompt(source, sha256_text(text), kept))


def resolve_prompt(source: PromptSource, obj: Mapping[str, Any] | None) -> PromptRead:
    """The prompt of `source` given the Secret/ConfigMap it names (`obj`, None when missing); inline
    sources ignore `obj`."""
    if source.kind == "inline":
        return _resolved(source, source.inline)
    if obj is None:
        return _resolved(source, None)
    return _resolved(source, _decoded(obj.get("data") or {}, source.key, source.kind == "Secret"))


def prompt_from_objects(lookup: Lookup, agent_name: str | None) -> PromptRead:
    """`render --offline`: the prompt from the given objects only (a ref's Secret/ConfigMap must be among
    them, else the run is shown as the controller would hold it: SystemPromptNotFound)."""
    source = agent_prompt_source(lookup.get("Agent", agent_name) if agent_name else None)
    if source is None:
        return PromptRead(None)
    return resolve_prompt(source, lookup.get(source.kind, source.name) if source.kind != "inline" else None)


async def read_system_prompt(
    client: Client | None, lookup: Lookup, agent_name: str | None, namespace: str
) -> PromptRead:
    """The prompt of Agent `agent_name`; a missing Agent is the run validation's problem, not this one."""
    agent = lookup.get("Agent", agent_name) if agent_name else None
    source = agent_prompt_source(agent)
    if source is None:
        return PromptRead(None)
    if source.kind == "inline":
        return resolve_prompt(source, None)
    if client is None:
        return PromptRead(source, problem=Problem(PROMPT_NOT_FOUND, f"{source.where} was not read"))
    ref = SECRETS if source.kind == "Secret" else CONFIGMAPS
    try:
        obj = await client.get(ref, source.name, namespace)
    except NotFoundError:
        obj = None
    return resolve_prompt(source, obj)
