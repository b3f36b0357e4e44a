#!/usr/bin/env bash
# Fresh machine → full test suite (real vLLM inference on CPU with the embedded model).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install_deps.sh
"$PY" -m fms_dgt.engines.default_model >/dev/null
"$PY" -m ruff check fms_dgt data_builders tests bench
"$PY" -m ruff format --check fms_dgt data_builders tests bench
"$PY" -m mypy   # settings in pyproject.toml: every function of fms_dgt/ typed and checked
"$PY" -m pytest -q "$@"
