"""issue 13 item 1: agentctl reads 0.9.29's `AGENTS_GRPC_ADDRESS` / `AGENTS_GRPC_TOKEN`; jangar's names win."""

from __future__ import annotations

import pytest

from jangar import agentctl

NAMES = ("AGENTCTL_SERVER", "AGENTCTL_ADDRESS", "AGENTCTL_TOKEN", "JANGAR_GRPC_ADDRESS", "JANGAR_GRPC_TOKEN")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*NAMES, "AGENTS_GRPC_ADDRESS", "AGENTS_GRPC_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_the_0_9_29_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTS_GRPC_ADDRESS", "agents:50051")
    monkeypatch.setenv("AGENTS_GRPC_TOKEN", "agents-token")
    assert agentctl._env_first(agentctl.SERVER_ENV) == "agents:50051"
    assert agentctl._env_first(agentctl.TOKEN_ENV) == "agents-token"


def test_the_jangar_names_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTS_GRPC_ADDRESS", "agents:50051")
    monkeypatch.setenv("JANGAR_GRPC_ADDRESS", "jangar:50051")
    monkeypatch.setenv("AGENTS_GRPC_TOKEN", "agents-token")
    monkeypatch.setenv("JANGAR_GRPC_TOKEN", "jangar-token")
    assert agentctl._env_first(agentctl.SERVER_ENV) == "jangar:50051"
    assert agentctl._env_first(agentctl.TOKEN_ENV) == "jangar-token"
