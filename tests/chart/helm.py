"""Helpers shared by the chart tests: run real helm, parse what it renders."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "agents"
VALUES_FILES = sorted(p.name for p in CHART.glob("values-*.yaml"))
RELEASE = "agents"
NAMESPACE = "agents"


class RenderError(AssertionError):
    """helm refused to render; `stderr` holds its message."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr


@dataclass
class Rendered:
    docs: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d.get("kind") == kind]

    def names(self, kind: str) -> list[str]:
        return [d["metadata"]["name"] for d in self.all(kind)]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        for d in self.all(kind):
            meta = d["metadata"]
            if meta["name"] == name and (namespace is None or meta.get("namespace") == namespace):
                return d
        raise KeyError(f"no {kind} {name!r} in {[(d['kind'], d['metadata']['name']) for d in self.docs]}")

    def has(self, kind: str, name: str) -> bool:
        return name in self.names(kind)

    def container(self, deployment: str = "agents") -> dict[str, Any]:
        dep = self.get("Deployment", deployment)
        containers: list[dict[str, Any]] = dep["spec"]["template"]["spec"]["containers"]
        return containers[0]

    def env_list(self, deployment: str = "agents") -> list[dict[str, Any]]:
        env: list[dict[str, Any]] = self.container(deployment).get("env", [])
        return env

    def env(self, deployment: str = "agents") -> dict[str, Any]:
        """name -> plain value, or the valueFrom dict when the value comes from a ref."""
        result: dict[str, Any] = {}
        for item in self.env_list(deployment):
            result[item["name"]] = item["value"] if "value" in item else item["valueFrom"]
        return result


def helm(helm_bin: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm_bin), *args], capture_output=True, text=True, timeout=120, check=False)
    if check and proc.returncode != 0:
        raise RenderError(proc.stderr or proc.stdout)
    return proc


def _values_args(values: Mapping[str, Any] | None, files: Iterable[str], tmp: Path) -> list[str]:
    args: list[str] = []
    for name in files:
        args += ["--values", str(CHART / name) if "/" not in name else name]
    if values:
        path = tmp / "values.yaml"
        path.write_text(yaml.safe_dump(dict(values)))
        args += ["--values", str(path)]
    return args


def template_text(
    helm_bin: Path,
    values: Mapping[str, Any] | None = None,
    *,
    files: Iterable[str] = (),
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    extra: Iterable[str] = (),
) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            *_values_args(values, files, Path(tmp)),
            *extra,
        ]
        return helm(helm_bin, *args).stdout


def render(
    helm_bin: Path,
    values: Mapping[str, Any] | None = None,
    *,
    files: Iterable[str] = (),
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    extra: Iterable[str] = (),
) -> Rendered:
    text = template_text(helm_bin, values, files=files, release=release, namespace=namespace, extra=extra)
    docs = [d for d in yaml.safe_load_all(text) if d]
    return Rendered(docs)


def render_error(helm_bin: Path, values: Mapping[str, Any] | None = None, **kw: Any) -> str:
    try:
        render(helm_bin, values, **kw)
    except RenderError as err:
        return err.stderr
    raise AssertionError(f"helm rendered values it should reject: {values}")
