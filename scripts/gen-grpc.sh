#!/usr/bin/env bash
# Regenerate jangar/grpc/gen/ from jangar/grpc/proto/ (protoc from grpcio-tools, .pyi from mypy-protobuf).
# Usage: scripts/gen-grpc.sh [OUT_DIR]   (default: jangar/grpc/gen; tests pass a temp dir to detect drift)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
OUT="${1:-jangar/grpc/gen}"
PROTO_DIR=jangar/grpc/proto
mkdir -p "$OUT"
PLUGIN_DIR="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")"
"$PY" -m grpc_tools.protoc \
  -I "$PROTO_DIR" \
  --python_out="$OUT" \
  --mypy_out="$OUT" \
  --grpc_python_out="$OUT" \
  --mypy_grpc_out="$OUT" \
  --plugin=protoc-gen-mypy="$PLUGIN_DIR/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$PLUGIN_DIR/protoc-gen-mypy_grpc" \
  proompteng/jangar/v1/agentctl.proto
# protoc emits absolute imports rooted at the proto path; make them package-relative to jangar.grpc.gen.
find "$OUT" -name '*_pb2_grpc.py' -o -name '*_pb2_grpc.pyi' | while read -r f; do
  sed -i 's/^from proompteng\.jangar\.v1 import /from jangar.grpc.gen.proompteng.jangar.v1 import /' "$f"
done
for d in . proompteng proompteng/jangar proompteng/jangar/v1; do
  : > "$OUT/$d/__init__.py"
done
