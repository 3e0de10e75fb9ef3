#!/usr/bin/env bash
# Set up .venv if needed, then run llmscope (with no arguments: the playground on the embedded SmolLM2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/llmscope "$@"
