// The pictures of `largedet plot`: training curves of one or more runs (total loss, learning rate
// and AP against iteration, read from each run's metrics.jsonl, side by side in one PNG), any of
// their metrics chosen by key patterns (--scalars), and AP against batch per method over the
// cells of a sweep.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace largedet::tools {

struct RunCurves {
  std::string name;  // the run directory's basename, shown in the legend
  // metric key ("total_loss", "lr", "bbox/AP", ...) -> (iteration, value), sorted by iteration
  std::map<std::string, std::vector<std::pair<double, double>>> series;
};

// Reads RUN_DIR/metrics.jsonl: every numeric key of every line, the lines of one iteration merged
// by key. Throws largedet::Error when the file is missing or a line is not a JSON object with a
// numeric "iteration" (naming file:line). Null values (NaN/Inf) are skipped.
RunCurves read_run(const std::string& run_dir);

// The colour of the index-th run in write_curves_png (a fixed, colour-blind-friendlier palette).
std::array<uint8_t, 3> run_color(std::size_t index);

struct CurvesOptions {
  bool loss_only = false;  // one wide total-loss panel (the seed paper's Figure 3)
};

// Writes a 1500x450 PNG to `path` (atomically) with three panels: total_loss, lr and AP
// (bbox/AP solid, segm/AP dashed) against iteration, one colour per run and a legend of run names.
// Throws largedet::Error when there are no runs, the file cannot be written, or LargeDet was built
// without cairo.
void write_curves_png(const std::string& path, const std::vector<RunCurves>& runs,
                      const CurvesOptions& options = {});

// Whether `text` matches `pattern`, in which `*` stands for any run of characters (none, and '/',
// included) and every other character for itself: "agvm/*/factor", "loss_*", "agvm/*".
bool glob_match(const std::string& pattern, const std::string& text);

// One --scalars panel: its pattern and the numeric metric keys, of any of the runs, that match it
// (in key order).
struct ScalarPanel {
  std::string pattern;
  std::vector<std::string> keys;
};

// The keys that each pattern matches among the runs' numeric metrics. Throws largedet::Error
// naming the first pattern that matches no key of any run, with the numeric keys that exist.
std::vector<ScalarPanel> match_scalars(const std::vector<RunCurves>& runs,
                                       const std::vector<std::string>& patterns);

// Writes a PNG to `path` (atomically), 1500 wide, with one panel per pattern stacked top to
// bottom (340 px each, plus the rows of its legend): every matching key against iteration on one
// iteration axis shared by the panels, one line (with dots when it has at most 30 points) and
// colour per (run, key) (the 11th to 20th lines of a panel dashed) and a legend of the keys
// ("RUN: KEY" with several runs) under each panel; the y axis spans the lines' values. A key a run
// lacks is skipped. Throws largedet::Error when there are no runs or no patterns, as match_scalars
// does, when the file cannot be written, or when LargeDet was built without cairo.
void write_scalars_png(const std::string& path, const std::vector<RunCurves>& runs,
                       const std::vector<std::string>& patterns);

// One sweep cell in the AP-against-batch picture.
struct BatchPoint {
  std::string series;  // the method it belongs to ("lamb", "sgd 0.01")
  double batch = 0;    // SOLVER.IMS_PER_BATCH
  double ap = 0;       // its final bbox/AP; not drawn when it diverged
  bool diverged = false;
};

// Writes a 1000x600 PNG: AP against batch on a log2 axis, one colour per series (in order of
// first appearance) with a line through the mean AP of each batch (over seeds), a dot per cell
// and a cross at 0 per diverged cell. Throws largedet::Error when there are no points, a batch is
// not positive, the file cannot be written, or LargeDet was built without cairo.
void write_ap_vs_batch_png(const std::string& path, const std::vector<BatchPoint>& points);

}  // namespace largedet::tools
