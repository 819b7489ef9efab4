#!/bin/sh
# Builds the data and evaluation layers' libFuzzer targets with clang (-fsanitize=fuzzer,address)
# and runs each for a bounded time on its seed corpus. Torch is not linked: the parsers, the
# evaluator and the decoders are plain C++.
# usage: run_fuzz.sh SOURCE_DIR WORK_DIR [SECONDS_PER_TARGET]
# Exit 77 (CTest SKIP_RETURN_CODE) when clang or libFuzzer is missing. A crash leaves its input in
# WORK_DIR/artifacts/: turn it into a regression test in tests/data (tests/evaluation for
# fuzz_coco_results).
set -eu
SRC=$1
WORK=$2
SECONDS_PER_TARGET=${3:-20}
CXX=${FUZZ_CXX:-}
if [ -z "$CXX" ]; then
  CXX=$(command -v clang++-14 || command -v clang++ || true)
fi
if [ -z "$CXX" ]; then
  echo "fuzz: no clang++ found (install clang and libclang-rt-dev: make deps); skipped"
  exit 77
fi
mkdir -p "$WORK/artifacts" "$WORK/corpus_coco" "$WORK/corpus_results" "$WORK/corpus_image"
probe="$WORK/probe.cpp"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe"
if ! "$CXX" -fsanitize=fuzzer,address "$probe" -o "$WORK/probe" 2>/dev/null; then
  echo "fuzz: $CXX cannot link -fsanitize=fuzzer (libclang-rt-dev missing?); skipped"
  exit 77
fi

FLAGS="-std=c++17 -O1 -g -fno-omit-frame-pointer -I$SRC/include -I$SRC/src/data -I$SRC/src/evaluation"
CORE="$SRC/src/core/error.cpp $SRC/src/core/logging.cpp $SRC/src/core/file_io.cpp $SRC/src/core/threads.cpp"
EVAL="$SRC/src/evaluation/coco_json.cpp $SRC/src/evaluation/json_util.cpp $SRC/src/evaluation/rle.cpp"
RESULTS="$SRC/src/evaluation/results.cpp $SRC/src/evaluation/coco_eval.cpp"
DATA="$SRC/src/data/coco_dataset.cpp $SRC/src/data/box_check.cpp $SRC/src/data/bad_input.cpp"
CODEC="$SRC/src/data/image_codec.cpp"
LIBS="-lsimdjson -lturbojpeg -lpng -lpthread"

echo "fuzz: building with $CXX"
# shellcheck disable=SC2086
"$CXX" $FLAGS -fsanitize=fuzzer,address "$SRC/tests/fuzz/fuzz_coco_json.cpp" $CORE $EVAL $DATA \
  $LIBS -o "$WORK/fuzz_coco_json"
# shellcheck disable=SC2086
"$CXX" $FLAGS -fsanitize=fuzzer,address "$SRC/tests/fuzz/fuzz_coco_results.cpp" $CORE $EVAL \
  $RESULTS $LIBS -o "$WORK/fuzz_coco_results"
# shellcheck disable=SC2086
"$CXX" $FLAGS -fsanitize=fuzzer,address "$SRC/tests/fuzz/fuzz_image_decode.cpp" $CODEC \
  "$SRC/src/core/error.cpp" $LIBS -o "$WORK/fuzz_image_decode"
# shellcheck disable=SC2086
"$CXX" $FLAGS "$SRC/tests/fuzz/make_image_seeds.cpp" $CODEC "$SRC/src/core/error.cpp" $LIBS \
  -o "$WORK/make_image_seeds"

cp "$SRC"/tests/fuzz/corpus/coco/* "$WORK/corpus_coco/"
cp "$SRC"/tests/fuzz/corpus/results/* "$WORK/corpus_results/"
"$WORK/make_image_seeds" "$WORK/corpus_image"

status=0
for target in fuzz_coco_json:corpus_coco fuzz_coco_results:corpus_results \
    fuzz_image_decode:corpus_image; do
  name=${target%%:*}
  corpus=${target#*:}
  echo "fuzz: running $name for ${SECONDS_PER_TARGET}s"
  if ! ASAN_OPTIONS=detect_leaks=1 "$WORK/$name" -max_total_time="$SECONDS_PER_TARGET" \
      -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
      -artifact_prefix="$WORK/artifacts/$name-" "$WORK/$corpus" > "$WORK/$name.log" 2>&1; then
    echo "fuzz: $name FAILED; input and log in $WORK/artifacts and $WORK/$name.log"
    tail -40 "$WORK/$name.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$WORK/$name.log" || true
  fi
done
exit $status
