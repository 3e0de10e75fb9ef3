#!/usr/bin/env bash
# Set up .venv if needed, then run llmscope (with no arguments: a generation on the embedded SmolLM2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
if [ "$#" -eq 0 ]; then
  set -- generate "The capital of France is" --steps 8 --preset balanced --seed 1
fi
exec .venv/bin/llmscope "$@"
