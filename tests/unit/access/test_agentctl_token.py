"""agentctl's token for `--server`: `--token`, then AGENTCTL_TOKEN, then JANGAR_GRPC_TOKEN, then the
kubeconfig's user token (none when there is no kubeconfig or its user has a client certificate)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from jangar.agentctl import grpc_token, kubeconfig_token


def _kubeconfig(path: Path, user: dict[str, object]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": user}, {"name": "other", "user": {"token": "other-token"}}],
                "contexts": [
                    {"name": "main", "context": {"cluster": "c", "user": "u"}},
                    {"name": "alt", "context": {"cluster": "c", "user": "other"}},
                ],
                "current-context": "main",
            }
        )
    )
    return path


def _args(
    kubeconfig: Path | None, token: str | None = None, context: str | None = None
) -> argparse.Namespace:
    return argparse.Namespace(
        token=token, kubeconfig=str(kubeconfig) if kubeconfig else None, context=context
    )


async def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kc = _kubeconfig(tmp_path / "kc", {"token": "kube-token"})
    for name in ("AGENTCTL_TOKEN", "JANGAR_GRPC_TOKEN", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert await grpc_token(_args(kc)) == "kube-token"
    assert await grpc_token(_args(kc, context="alt")) == "other-token"
    monkeypatch.setenv("JANGAR_GRPC_TOKEN", "shared")
    assert await grpc_token(_args(kc)) == "shared"
    monkeypatch.setenv("AGENTCTL_TOKEN", "env-token")
    assert await grpc_token(_args(kc)) == "env-token"
    assert await grpc_token(_args(kc, token="flag-token")) == "flag-token"


async def test_token_file_and_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    (tmp_path / "tok").write_text("from-file\n")
    assert await kubeconfig_token(
        str(_kubeconfig(tmp_path / "a", {"tokenFile": str(tmp_path / "tok")})), None
    ) == ("from-file")
    cert_user = {"client-certificate-data": "eA==", "client-key-data": "eA=="}
    assert await kubeconfig_token(str(_kubeconfig(tmp_path / "b", cert_user)), None) is None
    assert await kubeconfig_token(str(tmp_path / "missing"), None) is None
    assert await kubeconfig_token(None, None) is None
