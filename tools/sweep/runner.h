// `largedet sweep`: every cell of a grid trained in turn as `largedet train --resume` into
// OUTPUT/<cell>, skipping the cells that are finished (here or in the archive), one progress line
// per cell with an ETA, and a summary at the end.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace largedet::tools::sweep {

struct SweepOptions {
  std::string base;               // the recipe every cell starts from
  std::string output;             // one subdirectory per cell
  std::vector<std::string> grid;  // KEY=v1,v2,... (one value: fixed for every cell)
  std::string prefix;             // of every cell's name (Grid::prefix)
  // > 0: each cell runs under `largedet launch --nproc-per-node N`; otherwise the cell is one
  // process that inherits this one's launcher environment (RANK, WORLD_SIZE, ...).
  int nproc_per_node = 0;
  // Where finished cells' metrics.jsonl, config.yaml and sweep.json are copied; a cell whose
  // archived record is final counts as done (a clone of the repository resumes the study).
  std::string archive;
  int64_t max_cells = 10000;                  // a larger grid is refused before it is expanded
  bool dry_run = false;                       // print the plan and the commands, run nothing
  bool echo = false;                          // stream the cells' output to the terminal too
  std::string executable = "/proc/self/exe";  // the largedet binary (`sweep`: bin/largedet)
  // SOLVER.MAX_ITER of the run that these overrides of `base` make (after batch scaling on the
  // sweep's world size); throws largedet::Error for overrides the recipe refuses. Resolving a
  // recipe is the solver's job, so the command provides it.
  std::function<int64_t(const std::vector<std::string>& overrides)> max_iter;
};

// Exit code: 0 when every cell is done or diverged, 1 when one failed, 130 when a signal stopped
// the sweep (rerun the same command to resume). Throws largedet::Error, before running anything,
// for a grid or recipe it refuses and for a cell directory that holds another grid's run.
int run_sweep(const SweepOptions& options);

// "iter 3213/12600, eta 8:08" from the last training log line in `output` ("" when none): what the
// sweep shows of the running cell on a terminal.
std::string cell_progress(const std::string& output);

}  // namespace largedet::tools::sweep
