// `largedet sweep --summary DIR`: one row per cell of a sweep (or of its archive), from each
// cell's sweep.json, metrics.jsonl and config.yaml, written as DIR/summary.md and DIR/summary.csv.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sweep/record.h"
#include "visualize/plot.h"

namespace largedet::tools::sweep {

// What a cell's metrics.jsonl says about it. COCO AP is in [0, 1], as the evaluator writes it.
struct CellMetrics {
  int64_t iterations = 0;                        // the last iteration logged
  std::optional<double> first_loss, final_loss;  // total_loss
  std::optional<double> ap, ap50, ap75;          // bbox/AP* of the last evaluation
  std::optional<double> best_ap;                 // the best bbox/AP of any evaluation
};

CellMetrics cell_metrics(const RunCurves& run);
// The metrics of a run directory; empty when it has no metrics.jsonl yet.
CellMetrics metrics_of(const std::string& run_dir);

// "total_loss rose from 1.2 to 3.4" when the last logged loss is above the first (the sweep's
// second sign of divergence, beside the NaN guard); nullopt otherwise or with fewer than two.
std::optional<std::string> loss_divergence(const CellMetrics& metrics);

struct CellSummary {
  std::string name;  // the cell directory's name
  CellRecord record;
  CellMetrics metrics;
  // Every value of the cell's config.yaml (the recipe as train resolved it) by dotted key, lists
  // as flow YAML, overlaid by the record's overrides as written (so that a series keyed by
  // SOLVER.BASE_LR keeps the value given, not the one scaled per batch): what the plots use.
  std::map<std::string, std::string> settings;
  // Set by mark_collapsed (read_sweep calls it): why the cell counts as collapsed.
  std::optional<std::string> collapse;

  bool diverged() const { return record.status == Status::kDiverged; }
  bool collapsed() const { return collapse.has_value(); }
  // The status in the summary: "collapsed" for a collapsed cell, the record's otherwise (the
  // record itself keeps "done": a collapsed cell is finished and never trained again).
  std::string status() const;
  // The value of `key` in `settings` (the override as written, else config.yaml's); nullopt when
  // neither has it.
  std::optional<std::string> setting(const std::string& key) const;
};

// A cell is collapsed when it is done (trained to max_iter, its losses finite), has a final
// bbox/AP, and that AP is under a tenth of the best final bbox/AP among `cells` (the rows of one
// summary) at the same SOLVER.IMS_PER_BATCH (read with CellSummary::setting). A cell without an
// evaluation or without a batch is not judged; a batch whose best AP is 0 has no collapsed cell.
// Sets `collapse` on the collapsed cells, clears it on the others.
void mark_collapsed(std::vector<CellSummary>& cells);

// The cells of DIR: its subdirectories that hold a sweep.json, in name order, the collapsed ones
// marked (mark_collapsed). Throws largedet::Error when DIR is not a directory or holds no cell.
std::vector<CellSummary> read_sweep(const std::string& dir);

struct SummaryTables {
  std::string markdown;
  std::string csv;
};

// One row per cell: its name, one column per override key (grid and fixed, in order of first
// appearance), status (CellSummary::status, so collapsed included), diverged, iterations (of
// max_iter), final loss, final AP/AP50/AP75, best AP, wall time and the reason a cell diverged,
// failed or collapsed.
SummaryTables summary_tables(const std::vector<CellSummary>& cells);

// The cells with a final bbox/AP, or diverged, for write_ap_vs_batch_png: series named by the
// values of `series_keys` (joined by spaces), batch from SOLVER.IMS_PER_BATCH. With `best_key`
// (e.g. SOLVER.BASE_LR), only the cells at a series' best value of it at each batch: the value
// whose cells have the highest mean final AP (a diverged cell counts 0), so that an LR grid on one
// seed and the best LR's other seeds plot as the method's best LR over its seeds. Throws
// largedet::Error naming the cell when one of those keys is in neither its overrides nor its
// config.yaml.
std::vector<BatchPoint> batch_points(const std::vector<CellSummary>& cells,
                                     const std::vector<std::string>& series_keys,
                                     const std::string& best_key = "");

// Writes DIR/summary.md and DIR/summary.csv for read_sweep(DIR); returns the cells.
std::vector<CellSummary> write_summary(const std::string& dir);

}  // namespace largedet::tools::sweep
