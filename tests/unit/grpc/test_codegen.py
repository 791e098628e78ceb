"""The committed generated modules are exactly what scripts/gen-grpc.sh makes from the committed proto."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GEN = ROOT / "jangar" / "grpc" / "gen"


def _files(base: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(base)): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_modules_match_the_proto(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen-grpc.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stderr
    fresh, committed = _files(out), _files(GEN)
    assert sorted(fresh) == sorted(committed), "file set differs: run scripts/gen-grpc.sh and commit"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files {stale}: run scripts/gen-grpc.sh and commit"
    assert filecmp.dircmp(out, GEN).diff_files == []
