#!/usr/bin/env python3
"""Fuzz every kind's spec through validation and the decision code, many examples per kind, with numbers.

    PYTHONPATH=$PWD .venv/bin/python scripts/fuzz.py                 # 10,000 per kind (5,000 valid + 5,000 garbage)
    PYTHONPATH=$PWD .venv/bin/python scripts/fuzz.py -n 2000 -k AgentRun -k Tool --seed 7

Each kind gets `-n` examples split between structurally valid specs and garbage (`tests/unit/fuzz/`).
Unlike the unit test, a failing example does not stop the run: every crash (an exception escaping the
model or the decision) and every broken rule (`harness.check`) is counted, and the first example of each
distinct failure (by exception type and the innermost jangar frame) is printed. Exit 1 if there was any.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from hypothesis import HealthCheck, given, seed, settings

from tests.unit.fuzz.harness import check, exercise
from tests.unit.fuzz.strategies import KINDS, garbage_spec, valid_spec


def _where(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/jangar/" in f.filename]
    frame = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno} ({frame.name})"


def fuzz(
    kind: str, mode: str, examples: int, rng_seed: int | None
) -> tuple[Counter[str], dict[str, str], int, float]:
    failures: Counter[str] = Counter()
    first: dict[str, str] = {}
    stats = Counter[str]()
    strategy = valid_spec(kind) if mode == "valid" else garbage_spec(kind)

    @settings(
        max_examples=examples,
        derandomize=rng_seed is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=strategy)
    def run(spec: Any) -> None:
        stats["examples"] += 1
        try:
            out = exercise(kind, spec)
            check(out)
        except Exception as exc:
            key = _where(exc) if not isinstance(exc, AssertionError) else f"rule: {str(exc)[:160]}"
            failures[key] += 1
            first.setdefault(key, f"spec={spec!r:.600}\n{''.join(traceback.format_exception(exc)[-3:])}")
            return
        stats["rejected"] += out.rejected

    if rng_seed is not None:
        run = seed(rng_seed)(run)
    start = time.monotonic()
    run()
    return failures, first, stats["examples"], time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-n", "--examples", type=int, default=10_000, help="examples per kind (default 10000)"
    )
    parser.add_argument("-k", "--kind", action="append", choices=KINDS, help="only these kinds")
    parser.add_argument("--seed", type=int, default=None, help="a seed (default: derandomized, reproducible)")
    args = parser.parse_args()
    kinds = args.kind or list(KINDS)
    total_examples = 0
    total_failures: Counter[str] = Counter()
    started = time.monotonic()
    print(f"{'kind':<24}{'mode':<9}{'examples':>9}{'seconds':>9}{'per s':>8}  failures")
    with structlog.testing.capture_logs():
        for kind in kinds:
            for mode in ("valid", "garbage"):
                n = args.examples // 2
                failures, first, ran, seconds = fuzz(kind, mode, n, args.seed)
                total_examples += ran
                total_failures.update(failures)
                print(
                    f"{kind:<24}{mode:<9}{ran:>9}{seconds:>9.1f}{ran / max(seconds, 1e-9):>8.0f}  {sum(failures.values())}"
                )
                for key, count in failures.items():
                    print(f"    {count} x {key}\n      {first[key]}".replace("\n", "\n      "))
    elapsed = time.monotonic() - started
    print(
        f"\n{total_examples} resources over {len(kinds)} kinds in {elapsed:.0f} s: "
        f"{sum(total_failures.values())} failures ({len(total_failures)} distinct)"
    )
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
