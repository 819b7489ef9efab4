#!/usr/bin/env bash
# Creates the throwaway virtual environment in which `largedet bench eval` runs the peers of our
# COCO evaluator (bench/eval_peer.py), pinned to the versions docs/benchmarks.md quotes:
#
#   bench/setup_eval_peers.sh        # venv at $EVAL_PEERS_VENV (default /tmp/eval-peers-venv)
#   build/bin/largedet bench eval    # finds it there
#
# Not the project's .venv and not used by CI: a benchmark, never a test.
set -euo pipefail
VENV="${EVAL_PEERS_VENV:-/tmp/eval-peers-venv}"
PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q pycocotools==2.0.11 faster-coco-eval==1.8.0 \
  ultrafast-pycocotools==0.1.14 hotcoco==1.3.0
echo "peers installed in $VENV: $("$VENV/bin/python" -m pip list 2>/dev/null |
  grep -iE '^(pycocotools|faster-coco-eval|ultrafast-pycocotools|hotcoco) ' | tr -s ' ' | paste -sd, -)"
