"""issue 13 item 3: reading an Agent's system prompt (inline from the cache, refs from the API server)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from jangar.controllers.agentrun.prompt_read import PROMPT_NOT_FOUND, read_system_prompt
from jangar.runtime import NotFoundError
from jangar.scheduler.system_prompt import sha256_text
from tests.unit.scheduler.objects import agent
from tests.unit.validation.test_agentrun import FakeLookup, kinded


class FakeClient:
    """`get` of ConfigMaps and Secrets by name; counts reads."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.reads: list[tuple[str, str]] = []

    async def get(self, ref: Any, name: str, namespace: str) -> dict[str, Any]:
        self.reads.append((ref.kind, name))
        if (ref.kind, name) not in self.objects:
            raise NotFoundError(f"{ref.kind} {name} not found")
        return self.objects[(ref.kind, name)]


def read(defaults: dict[str, Any], client: FakeClient | None) -> Any:
    lookup = FakeLookup(kinded("Agent", agent(defaults=defaults)))
    return asyncio.run(read_system_prompt(client, lookup, "agent-1", "agents"))  # type: ignore[arg-type]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_an_inline_prompt_needs_no_read() -> None:
    client = FakeClient({})
    got = read({"systemPrompt": "be kind"}, client)
    assert got.prompt is not None and got.prompt.sha256 == sha256_text("be kind") and client.reads == []


def test_a_configmap_prompt_keeps_its_text_and_a_secret_prompt_does_not() -> None:
    client = FakeClient(
        {
            ("ConfigMap", "p"): {"data": {"systemPrompt": "from cm"}},
            ("Secret", "s"): {"data": {"k": b64("from secret")}},
        }
    )
    cm = read({"systemPromptRef": {"kind": "ConfigMap", "name": "p"}}, client)
    assert cm.prompt is not None and cm.prompt.text == "from cm"
    secret = read({"systemPromptRef": {"kind": "Secret", "name": "s", "key": "k"}}, client)
    assert secret.prompt is not None and secret.prompt.text is None
    assert secret.prompt.sha256 == sha256_text("from secret")
    assert "from secret" not in repr(secret)


@pytest.mark.parametrize(
    ("objects", "reason"),
    [
        ({}, PROMPT_NOT_FOUND),
        ({("ConfigMap", "p"): {"data": {"other": "x"}}}, PROMPT_NOT_FOUND),
        ({("ConfigMap", "p"): {"data": {"systemPrompt": "  "}}}, "MissingSystemPromptConfiguration"),
    ],
)
def test_an_unusable_ref_is_a_problem(objects: dict[tuple[str, str], dict[str, Any]], reason: str) -> None:
    got = read({"systemPromptRef": {"kind": "ConfigMap", "name": "p"}}, FakeClient(objects))
    assert got.prompt is None and got.problem is not None and got.problem.reason == reason


def test_an_agent_without_a_prompt_reads_nothing() -> None:
    client = FakeClient({})
    got = read({}, client)
    assert got.source is None and got.prompt is None and got.problem is None and client.reads == []
