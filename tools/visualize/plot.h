// Training curves of one or more runs (largedet plot): total loss, learning rate and AP against
// iteration, read from each run's metrics.jsonl, side by side in one PNG.
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

// Reads RUN_DIR/metrics.jsonl. Throws largedet::Error when the file is missing or a line is not a
// JSON object with a numeric "iteration" (naming file:line). Null values (NaN/Inf) are skipped.
RunCurves read_run(const std::string& run_dir);

// The colour of the index-th run in write_curves_png (a fixed, colour-blind-friendlier palette).
std::array<uint8_t, 3> run_color(std::size_t index);

// Writes a 1500x450 PNG to `path` (atomically) with three panels: total_loss, lr and AP
// (bbox/AP solid, segm/AP dashed) against iteration, one colour per run and a legend of run names.
// Throws largedet::Error when there are no runs, the file cannot be written, or LargeDet was built
// without cairo.
void write_curves_png(const std::string& path, const std::vector<RunCurves>& runs);

}  // namespace largedet::tools
