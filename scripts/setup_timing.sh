#!/usr/bin/env bash
# A newcomer's first hour, timed phase by phase (issue 31; docs/benchmarks.md, "Setup from a fresh
# clone"): clones REV into WORKDIR and runs what a new user runs, `make demo` then `make test`, one
# phase at a time, with ccache off so that nothing from earlier builds helps. Prints one table:
# each phase's wall time and CPU time (user + sys of every process it ran). When other work shares
# the cores, wall time stretches up to 2x and CPU time ~20% (docs/benchmarks.md), so the table also
# prints the load average at each phase's start.
#
#   scripts/setup_timing.sh [--rev REV] [--workdir DIR] [--fresh-venv] [--phases LIST] [--jobs N]
#
# --rev REV        what to clone (default HEAD of this repository)
# --workdir DIR    where (default /tmp/largedet_setup_timing; emptied first)
# --fresh-venv     install the Python packages into the clone (network, ~4.9 GB); without it the
#                  clone's .venv links this repository's, and the venv phase is not timed
# --phases LIST    comma-separated subset, in this order (default all):
#                  apt,venv,configure,demo-build,demo,test-build,test
#   apt          `make apt-deps` (only what is missing is installed: ~0 s on a prepared machine)
#   venv         `make venv`
#   configure    the CMake configure step of `make build`
#   demo-build   what `make demo` builds before it trains
#   demo         scripts/demo.sh: synthetic data, training on two workers, evaluation, pictures
#   test-build   what `make test` builds on top of it
#   test         `ctest -j JOBS`, as `make test` runs it
# --jobs N         build and test jobs (default 2, as the Makefile)
# --cuda ON|OFF    passed as -DLARGEDET_CUDA (default: the project's own default)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REV=HEAD
WORKDIR=/tmp/largedet_setup_timing
FRESH_VENV=
PHASES=apt,venv,configure,demo-build,demo,test-build,test
JOBS=2
CUDA_ARG=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rev) REV=$2; shift 2 ;;
    --workdir) WORKDIR=$2; shift 2 ;;
    --fresh-venv) FRESH_VENV=1; shift ;;
    --phases) PHASES=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --cuda) CUDA_ARG=("-DLARGEDET_CUDA=$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup_timing.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for p in ${PHASES//,/ }; do
  case "$p" in apt | venv | configure | demo-build | demo | test-build | test) ;; *)
    echo "setup_timing.sh: unknown phase '$p': use apt, venv, configure, demo-build, demo," \
      "test-build or test" >&2
    exit 2
    ;;
  esac
done
want() { [[ ",$PHASES," == *",$1,"* ]]; }

case "$WORKDIR" in / | "$HOME" | "$REPO" | "$REPO"/*)
  echo "setup_timing.sh: refusing to empty --workdir '$WORKDIR'" >&2
  exit 2
  ;;
esac
rm -rf "$WORKDIR"
mkdir -p "$WORKDIR"
SRC="$WORKDIR/src"
LOG="$WORKDIR/log"
git clone --quiet --no-hardlinks "$REPO" "$SRC"
git -C "$SRC" checkout --quiet "$(git -C "$REPO" rev-parse "$REV")"
COMMIT=$(git -C "$SRC" rev-parse --short HEAD)
if [ -z "$FRESH_VENV" ]; then
  [ -x "$REPO/.venv/bin/python" ] || { echo "no $REPO/.venv: run make venv or pass --fresh-venv" >&2; exit 1; }
  ln -s "$REPO/.venv" "$SRC/.venv"
fi
export CCACHE_DISABLE=1
cd "$SRC"
BUILD=build
PY="$SRC/.venv/bin/python"

ROWS=()
# phase NAME NOTE COMMAND...: runs it with its output in $LOG/NAME.log and records its times.
phase() {
  local name=$1 note=$2
  shift 2
  echo "== $name: $*  (log: $LOG/$name.log)"
  mkdir -p "$LOG"
  local load times
  load=$(cut -d' ' -f1 /proc/loadavg)
  if ! /usr/bin/time -f '%e %U %S' -o "$LOG/$name.time" "$@" >"$LOG/$name.log" 2>&1; then
    tail -20 "$LOG/$name.log"
    echo "setup_timing.sh: phase $name failed (log: $LOG/$name.log)" >&2
    exit 1
  fi
  times=$(tail -1 "$LOG/$name.time")
  ROWS+=("$(awk -v n="$name" -v l="$load" -v note="$note" '{
    printf "| %s | %d:%02d | %d:%02d | %s | %s |", n, $1 / 60, $1 % 60, ($2 + $3) / 60,
      ($2 + $3) % 60, l, note }' <<<"$times")")
  echo "   $(awk '{ printf "%.0f s wall, %.0f s CPU", $1, $2 + $3 }' <<<"$times")"
}

demo_targets() {  # what `make demo` builds, read from the Makefile so that the two cannot differ
  sed -n 's/.*cmake --build $(BUILD) -j $(JOBS) --target \(.*\)/\1/p' Makefile | head -1
}

want apt && phase apt "packages missing from this machine only" make apt-deps
if want venv && [ -n "$FRESH_VENV" ]; then
  phase venv "pip, into a new venv" make venv
fi
want configure && phase configure "" cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DLARGEDET_PYTHON="$PY" "${CUDA_ARG[@]}"
if want demo-build; then
  targets=$(demo_targets)
  phase demo-build "targets: $targets" cmake --build "$BUILD" -j "$JOBS" --target $targets
fi
want demo && phase demo "synth, train, evaluate, pictures" env BUILD="$BUILD" DEMO="$WORKDIR/demo" \
  bash scripts/demo.sh
want test-build && phase test-build "everything else" cmake --build "$BUILD" -j "$JOBS"
want test && phase test "ctest -j $JOBS" bash -c "cd $BUILD && ctest -j $JOBS"

echo
echo "Setup from a fresh clone of $COMMIT: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo |
  cut -d: -f2 | sed 's/^ *//'), $(date -u +%Y-%m-%d), ccache off"
[ -z "$FRESH_VENV" ] && echo "(the venv is this repository's: pip is not timed)"
echo
echo "| phase | wall | CPU | load at start | note |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
