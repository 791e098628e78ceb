"""An Agent's system prompt (0.9.29 row 5): where it comes from, its hash, and how it reaches the pod.

The controller resolves the prompt once per Job it builds (`jangar.controllers.agentrun.prompt_read`), hashes
it, and records the sha256 in `status.systemPromptHash` when the run is accepted. The pod gets the text as a
file and the expected hash as `JANGAR_SYSTEM_PROMPT_SHA256` (and the 0.9.29 name `AGENTS_SYSTEM_PROMPT_SHA256`);
jangar-runner refuses to start the agent when they differ (`jangar.runner.prompt`).

Delivery never puts the text in an env var: an inline or ConfigMap prompt is copied into a run-owned
ConfigMap, created once and adopted afterwards (so a prompt edit after acceptance does not change what later
steps read); a Secret prompt is mounted from the user's Secret as a volume (the controller does not copy
secret content), so a Secret edited after acceptance makes later attempts fail the hash check instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jangar.api.shape import as_map
from jangar.scheduler.naming import configmap_volume_name, dns_label

__all__ = [
    "DEFAULT_PROMPT_KEY",
    "PROMPT_DIR",
    "PROMPT_FILE",
    "PROMPT_HASH_ENV",
    "PROMPT_HASH_ENV_ALIAS",
    "PROMPT_PATH_ENV",
    "PromptDelivery",
    "PromptSource",
    "SystemPrompt",
    "agent_prompt_source",
    "prompt_configmap_name",
    "prompt_delivery",
    "sha256_text",
]

DEFAULT_PROMPT_KEY = "systemPrompt"
PROMPT_DIR = "/etc/jangar/system-prompt"
PROMPT_FILE = "system-prompt.md"
PROMPT_HASH_ENV = "JANGAR_SYSTEM_PROMPT_SHA256"
PROMPT_HASH_ENV_ALIAS = "AGENTS_SYSTEM_PROMPT_SHA256"
PROMPT_PATH_ENV = "JANGAR_SYSTEM_PROMPT_PATH"

SourceKind = Literal["inline", "ConfigMap", "Secret"]


def sha256_text(text: str) -> str:
    """The prompt's attestation hash: sha256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromptSource:
    """Where an Agent says its prompt is: inline, or a key of a Secret/ConfigMap in its namespace."""

    kind: SourceKind
    name: str = ""
    key: str = DEFAULT_PROMPT_KEY
    inline: str | None = None

    @property
    def where(self) -> str:
        """For messages: never the content."""
        if self.kind == "inline":
            return "spec.defaults.systemPrompt"
        return f"{self.kind} {self.name!r} key {self.key!r}"


@dataclass(frozen=True)
class SystemPrompt:
    """A resolved prompt. `text` is kept only for inline/ConfigMap sources (copied into the run's
    ConfigMap); a Secret's content is hashed where it is read and dropped."""

    source: PromptSource
    sha256: str
    text: str | None = None


@dataclass(frozen=True)
class PromptDelivery:
    """What the Job builder adds for the prompt."""

    configmaps: tuple[dict[str, Any], ...]
    volumes: tuple[dict[str, Any], ...]
    mounts: tuple[dict[str, Any], ...]
    env: tuple[dict[str, Any], ...]


def agent_prompt_source(agent: Mapping[str, Any] | None) -> PromptSource | None:
    """The Agent's `spec.defaults.systemPrompt` / `systemPromptRef`, or None when it has neither."""
    defaults = as_map(as_map(as_map(agent).get("spec")).get("defaults"))
    inline = defaults.get("systemPrompt")
    if isinstance(inline, str):
        return PromptSource("inline", inline=inline)
    ref = as_map(defaults.get("systemPromptRef"))
    kind, name = ref.get("kind"), ref.get("name")
    if kind in ("Secret", "ConfigMap") and isinstance(name, str) and name:
        key = ref.get("key")
        return PromptSource(kind, name=name, key=key if isinstance(key, str) and key else DEFAULT_PROMPT_KEY)
    return None


def prompt_configmap_name(run_name: str) -> str:
    """The run-owned ConfigMap holding an inline/ConfigMap prompt: one per run, shared by its steps."""
    return dns_label(run_name, "system-prompt")


def prompt_delivery(
    prompt: SystemPrompt, expected_sha256: str, run_name: str, metadata: Mapping[str, Any]
) -> PromptDelivery:
    """The ConfigMap (inline/ConfigMap sources), volume, mount and env that hand `prompt` to the pod.

    `expected_sha256` is the hash recorded at acceptance (the resolved one for a run being accepted now);
    `metadata` is the child metadata (namespace, labels, owner reference) of the run's other children.
    """
    path = f"{PROMPT_DIR}/{PROMPT_FILE}"
    configmaps: tuple[dict[str, Any], ...] = ()
    if prompt.source.kind == "Secret":
        volume_name = dns_label(run_name, "system-prompt-secret")
        volume: dict[str, Any] = {
            "name": volume_name,
            "secret": {
                "secretName": prompt.source.name,
                "items": [{"key": prompt.source.key, "path": PROMPT_FILE}],
            },
        }
    else:
        cm_name = prompt_configmap_name(run_name)
        configmaps = (
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {**metadata, "name": cm_name},
                "data": {PROMPT_FILE: prompt.text or ""},
            },
        )
        volume_name = configmap_volume_name(cm_name)
        volume = {"name": volume_name, "configMap": {"name": cm_name}}
    mount = {"name": volume_name, "mountPath": PROMPT_DIR, "readOnly": True}
    env = (
        {"name": PROMPT_HASH_ENV, "value": expected_sha256},
        {"name": PROMPT_HASH_ENV_ALIAS, "value": expected_sha256},
        {"name": PROMPT_PATH_ENV, "value": path},
    )
    return PromptDelivery(configmaps, (volume,), (mount,), env)
