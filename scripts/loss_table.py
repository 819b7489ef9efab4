#!/usr/bin/env python3
"""Losses at equal iterations and AP at each evaluation, for cells of one sweep (issue 16).

The seed paper's claim 3 is "lower loss at equal iterations"; the summary keeps only the final
loss, which one bad step can dominate. This prints one Markdown row per cell: the median
total_loss over each quarter of the run (robust to single spikes), the largest loss logged, and
bbox AP at each evaluation. Cells are sweep or archive directories holding metrics.jsonl.

  scripts/loss_table.py docs/large_batch/core/64x-lamb_SEED-1 docs/large_batch/core/64x-pmd_lamb_SEED-1
"""
import json
import math
import statistics
import sys
from pathlib import Path


def row(cell: Path) -> str:
    records = [json.loads(line) for line in (cell / "metrics.jsonl").open() if line.strip()]
    losses = [(r["iteration"], r["total_loss"]) for r in records if "total_loss" in r]
    aps = [r["bbox/AP"] for r in records if "bbox/AP" in r]
    if not losses:
        sys.exit(f"{cell}: no total_loss logged")
    max_iter = json.loads((cell / "sweep.json").read_text())["max_iter"]
    quarters = []
    for q in range(4):
        lo, hi = q * max_iter / 4, (q + 1) * max_iter / 4
        window = [loss for it, loss in losses if lo < it <= hi and math.isfinite(loss)]
        quarters.append(f"{statistics.median(window):.3g}" if window else "–")
    finite = [loss for _, loss in losses if math.isfinite(loss)]
    peak = f"{max(finite):.3g}" if finite else "–"
    ap_text = ", ".join(f"{ap:.3f}" for ap in aps) or "–"
    return f"| {cell.name} | " + " | ".join(quarters) + f" | {peak} | {ap_text} |"


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print("| cell | median loss, 1st quarter | 2nd | 3rd | 4th | largest loss "
          "| bbox AP at each evaluation |")
    print("|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print(row(Path(arg)))


if __name__ == "__main__":
    main()
