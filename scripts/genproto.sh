#!/usr/bin/env bash
# Regenerates the Python code for the mktx.v1 contract.
#   scripts/genproto.sh            writes into gen/ (commit the result)
#   scripts/genproto.sh OUT_DIR    writes into OUT_DIR instead (CI compares it to gen/)
# Uses the pinned grpcio-tools (see pyproject.toml), so output is reproducible.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gen}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && py=.venv/bin/python
mkdir -p "$out"
find "$out" -path "$out/mktx/*" \( -name '*_pb2*.py' -o -name '*_pb2.pyi' -o -name '*.binpb' \) -delete 2>/dev/null || true
mkdir -p "$out/mktx/v1"
# descriptors.binpb: the contract with its comments (source info) and its imports,
# served by server reflection so `grpcurl describe` shows the documentation.
"$py" -m grpc_tools.protoc -Iproto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  --include_imports --include_source_info --descriptor_set_out="$out/mktx/v1/descriptors.binpb" \
  $(find proto -name '*.proto' | sort)
# Package markers so `import mktx.v1.templates_pb2` works from an installed tree.
for d in $(cd "$out" && find mktx -type d); do
  [ -f "$out/$d/__init__.py" ] || : > "$out/$d/__init__.py"
done
