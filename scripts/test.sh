#!/usr/bin/env bash
# The test command: sets up a fresh machine if needed, runs the linters, then every test tier
# (unit, db, chart, envtest, kwok). Extra arguments go to pytest (e.g. `-m envtest` or a path).
# pytest's exit code 5 ("no tests collected") is a failure here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/bootstrap.sh

t=$(date +%s)
echo ">>> lint: ruff, mypy --strict, import-linter" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports
echo "<<< lint: $(( $(date +%s) - t ))s" >&2

t=$(date +%s)
echo ">>> pytest" >&2
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
echo "<<< pytest: $(( $(date +%s) - t ))s (exit $rc)" >&2
if [[ $rc -eq 5 ]]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
