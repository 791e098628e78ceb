"""The asset list is the same in Python and in scripts/k8s-assets.sh, and the script's cached early exit
checks every binary: a cache directory from before a binary was added gets only that binary built."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from jangar.dev.assets import ALL_BINARIES, NODE_BINARIES, Assets, find_assets, repo_root

SCRIPTS = repo_root() / "scripts"
SCRIPT = SCRIPTS / "k8s-assets.sh"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def script_array(name: str) -> list[str]:
    match = re.search(rf"^{name}=\(([^)]*)\)$", SCRIPT.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1).split()


def fake_assets(root: Path, names: tuple[str, ...]) -> None:
    (root / "bin").mkdir(parents=True)
    for name in names:
        path = root / "bin" / name
        path.write_text(f"#!/bin/sh\necho fake {name}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (root / "kwok").mkdir()
    (root / "kwok" / "stages.yaml").write_text("---\n")
    pause = SCRIPTS / "pause"
    digest = hashlib.sha256((pause / "go.mod").read_bytes() + (pause / "main.go").read_bytes()).hexdigest()
    (root / "pause.sha256").write_text(digest + "\n")
    coredns = SCRIPTS / "coredns"
    digest = hashlib.sha256(
        b"".join((coredns / f).read_bytes() for f in ("go.mod", "go.sum", "main.go"))
    ).hexdigest()
    (root / "coredns.sha256").write_text(digest + "\n")
    (root / ".complete").touch()


def run_script(assets: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # A `go` that always fails: a run that gets past the early exit stops at its first Go step.
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    go = fake_bin / "go"
    go.write_text("#!/bin/sh\necho 'fake go: no builds in unit tests' >&2\nexit 97\n")
    go.chmod(0o755)
    env = {"PATH": f"{fake_bin}:{os.environ['PATH']}", "HOME": str(tmp_path), "JANGAR_ASSETS": str(assets)}
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_python_and_script_list_the_same_binaries() -> None:
    assert sorted(script_array("K8S_BINARIES") + script_array("OTHER_BINARIES")) == sorted(ALL_BINARIES)
    assert set(NODE_BINARIES) == {"kubelet", "kube-proxy", "pause", "coredns"}
    assert len(set(ALL_BINARIES)) == len(ALL_BINARIES)


def test_missing_names_the_absent_node_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_assets(tmp_path, tuple(n for n in ALL_BINARIES if n not in NODE_BINARIES))
    monkeypatch.setenv("JANGAR_ASSETS", str(tmp_path))
    assets = find_assets()
    assert assets == Assets(tmp_path)
    assert assets.missing(NODE_BINARIES) == list(NODE_BINARIES)
    assert assets.missing(ALL_BINARIES) == list(NODE_BINARIES)


def test_cached_run_is_a_no_op_when_everything_is_there(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    fake_assets(assets, ALL_BINARIES)
    proc = run_script(assets, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == str(assets)
    assert "k8s assets cached" in proc.stderr


def test_complete_stamp_does_not_hide_a_missing_kubelet(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    fake_assets(assets, tuple(n for n in ALL_BINARIES if n != "kubelet"))
    before = {p.name: p.read_text() for p in (assets / "bin").iterdir()}
    proc = run_script(assets, tmp_path)
    # it went on to build the k8s binaries (and stopped at the fake go) instead of exiting as cached
    assert proc.returncode != 0
    assert "k8s assets cached" not in proc.stderr
    assert ">>> k8s wrapper module" in proc.stderr
    # nothing that existed was removed or rewritten, and no partial build is left behind
    assert {p.name: p.read_text() for p in (assets / "bin").iterdir()} == before


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if IN_CI:
            pytest.fail("shellcheck is not installed (scripts/bootstrap.sh installs it)")
        pytest.skip("shellcheck is not installed")
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    proc = subprocess.run(
        [shellcheck, "--severity=style", "-x", *scripts],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo_root(),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
