#!/bin/sh
# bin/largedet, the front (docs/architecture.md "The front"): it loads no LibTorch, runs its own
# commands without largedet-torch, hands every other command line (and evaluate's --config mode)
# to it with the arguments and exit code intact, and says how to build it when it is missing.
# Usage: front_check.sh BUILD_DIR WORK_DIR
set -u
BUILD=$1
WORK=$2
FRONT="$BUILD/bin/largedet"
rm -rf "$WORK" && mkdir -p "$WORK/alone/bin" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

if ldd "$FRONT" | grep -E 'libtorch|libc10'; then fail "bin/largedet loads LibTorch"; fi
ldd "$BUILD/libexec/largedet-torch" | grep -q libtorch_cpu || fail "largedet-torch has no LibTorch"

# Handed over: the whole command list, a group's help, and a command's exit code.
"$FRONT" --help > "$WORK/help.txt" 2>&1 || fail "largedet --help exits non-zero"
for cmd in train evaluate bench sweep plot; do
  grep -q "^  $cmd " "$WORK/help.txt" || fail "largedet --help does not list $cmd"
done
"$FRONT" bench --help 2>&1 | grep -q "^  ops " || fail "largedet bench --help does not list ops"
"$FRONT" train --config "$WORK/no_such.yaml" > "$WORK/train.txt" 2>&1
rc=$?
"$BUILD/libexec/largedet-torch" train --config "$WORK/no_such.yaml" > /dev/null 2>&1
direct=$?
[ "$rc" -ne 0 ] && [ "$rc" -eq "$direct" ] || fail "train's exit code $rc is not largedet-torch's $direct"
grep -q "no_such.yaml" "$WORK/train.txt" || fail "train's error does not reach the user"

# Alone (no libexec/ beside it): its own commands still run, the rest fail with what to do.
cp "$FRONT" "$WORK/alone/bin/largedet"
ALONE="$WORK/alone/bin/largedet"
"$ALONE" evaluate --help > /dev/null 2>&1 || fail "evaluate --help needs largedet-torch"
"$ALONE" --log-level warning bench eval --help > /dev/null 2>&1 ||
  fail "bench eval after --log-level needs largedet-torch"
"$ALONE" --log-level=warning plot --help > /dev/null 2>&1 || fail "plot needs largedet-torch"
"$ALONE" train --help > "$WORK/alone_train.txt" 2>&1 && fail "train ran without largedet-torch"
grep -q "libexec/largedet-torch.*build it" "$WORK/alone_train.txt" ||
  fail "no clear error without largedet-torch: $(cat "$WORK/alone_train.txt")"
echo '{}' > "$WORK/recipe.yaml"
echo x > "$WORK/weights.safetensors"
"$ALONE" evaluate --config "$WORK/recipe.yaml" --weights "$WORK/weights.safetensors" \
  > "$WORK/alone_eval.txt" 2>&1 && fail "evaluate --config ran without largedet-torch"
grep -q "libexec/largedet-torch" "$WORK/alone_eval.txt" ||
  fail "evaluate --config is not handed to largedet-torch: $(cat "$WORK/alone_eval.txt")"

[ "$failures" -eq 0 ] && echo "front: all checks passed"
[ "$failures" -eq 0 ]
