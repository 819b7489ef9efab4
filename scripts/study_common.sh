# shellcheck shell=bash
# Shared by scripts/study.sh and scripts/study_pretrained.sh (sourced, not run): one way to run a
# grid of the study as a resumable `largedet sweep`, to pick from its archive, and to draw losses.
# The caller sets LARGEDET, CONFIGS (the recipes' folder), RUNS, DOCS and EXTRA (the smoke test's
# overrides, applied unless the grid sets the same key).

# sweep ARCHIVE_PART PREFIX RECIPE OVERRIDES...
sweep() {
  local part=$1 prefix=$2 recipe=$3
  shift 3
  local extra=() e a
  for e in ${EXTRA[@]+"${EXTRA[@]}"}; do
    for a in "$@"; do [ "${a%%=*}" = "${e%%=*}" ] && continue 2; done
    extra+=("$e")
  done
  echo "== $part: $prefix ($CONFIGS/$recipe $*)"
  "$LARGEDET" sweep --config "$CONFIGS/$recipe" --output "$RUNS/$part" \
    --archive "$DOCS/$part" --prefix "$prefix" "$@" ${extra[@]+"${extra[@]}"}
}

# best_value ARCHIVE_PART CELL_PREFIX KEY [MIN_CELLS]: KEY's value (as the summary writes it) in
# the finished cell under the prefix with the highest final bbox AP (diverged cells and cells
# without an evaluation lose). Fails when fewer than MIN_CELLS (default 1) cells exist; exits 3,
# printing nothing, when they all diverged.
best_value() {
  "$LARGEDET" sweep --summary "$DOCS/$1" >/dev/null
  python3 - "$DOCS/$1/summary.csv" "$2" "$3" "${4:-1}" <<'PY'
import csv, sys
path, prefix, key, need = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [r for r in csv.DictReader(open(path)) if r["cell"].startswith(prefix)]
done = [r for r in rows if r["status"] in ("done", "collapsed") and r["diverged"] == "no"
        and r["bbox/AP"]]
if len(rows) < need:
    sys.exit(f"no finished cell {prefix}* in {path}: run that part of the study first")
if not done:
    sys.exit(3)
print(max(done, key=lambda r: float(r["bbox/AP"]))[key])
PY
}

# loss_figure PNG CELL...: the loss curves of those of the cells that exist, on shared axes.
loss_figure() {
  local out=$1 cells=() cell
  shift
  for cell in "$@"; do [ -d "$cell" ] && cells+=("$cell"); done
  [ ${#cells[@]} -eq 0 ] || "$LARGEDET" plot --loss-only "${cells[@]}" -o "$out"
}
