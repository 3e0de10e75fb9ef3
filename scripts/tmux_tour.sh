#!/usr/bin/env bash
# Drive the real playground in tmux like a user: wait for the model, step a few tokens, visit every pane,
# open the help, and save what each screen looks like as text into OUT (default /tmp/llmscope-tour).
# Usage: scripts/tmux_tour.sh [MODEL] [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-smollm2}"
out="${2:-/tmp/llmscope-tour}"
session="llmscope-tour-$$"
mkdir -p "$out"
tmux new-session -d -s "$session" -x 160 -y 48 ".venv/bin/llmscope tui --model $model; sleep 5"
trap 'tmux kill-session -t "$session" 2>/dev/null || true' EXIT
capture() { tmux capture-pane -p -t "$session" > "$out/$1.txt"; echo "saved $out/$1.txt"; }
for _ in $(seq 1 120); do  # the prompt runs by itself once the model is loaded
  if tmux capture-pane -p -t "$session" | grep -q "step 1"; then break; fi
  sleep 1
done
capture 00-loaded
for _ in 1 2 3; do tmux send-keys -t "$session" space; sleep 1.5; done
capture 01-generation
for pane in 1:tokens 2:logits 3:attention 4:kv 5:moe; do
  tmux send-keys -t "$session" "${pane%%:*}"; sleep 1.5
  capture "0${pane%%:*}-${pane#*:}"
done
tmux send-keys -t "$session" 3; sleep 1; tmux send-keys -t "$session" Enter; sleep 1.5; capture 06-attention-zoom
tmux send-keys -t "$session" "?"; sleep 1; capture 07-help
tmux send-keys -t "$session" Escape b; sleep 1.5; capture 08-rewound
tmux send-keys -t "$session" C-q; sleep 1
