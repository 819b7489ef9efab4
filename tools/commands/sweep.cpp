// largedet sweep: a grid of KEY=v1,v2,... overrides over a base recipe, one training run per cell
// (tools/sweep/runner.h); --summary DIR tabulates a sweep (tools/sweep/summary.h).
#include <cstdlib>
#include <iostream>
#include <memory>

#include "command_registry.h"
#include "executables.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/solver/batch_scaling.h"
#include "sweep/runner.h"
#include "sweep/summary.h"

namespace {

struct SweepArgs {
  largedet::tools::sweep::SweepOptions options;
  std::string summary;
};

// MAX_ITER after batch scaling, which SCALE_SCHEDULE and REFERENCE_WORLD_SIZE change.
int64_t resolved_max_iter(const std::string& base, const std::vector<std::string>& overrides,
                          int world_size) {
  auto config = largedet::Config::from_file(base, overrides);
  largedet::solver::apply_batch_scaling(config, world_size);
  return config.get<int64_t>("SOLVER.MAX_ITER");
}

int world_size(const largedet::tools::sweep::SweepOptions& options) {
  if (options.nproc_per_node > 0) return options.nproc_per_node;
  const char* world = std::getenv("WORLD_SIZE");
  return world && *world ? std::atoi(world) : 1;
}

void summarize(const std::string& dir) {
  const auto cells = largedet::tools::sweep::write_summary(dir);
  std::cout << largedet::tools::sweep::summary_tables(cells).markdown << "wrote " << dir
            << "/summary.md and " << dir << "/summary.csv (" << cells.size() << " cells)\n";
}

void setup_sweep(CLI::App& cmd) {
  auto args = std::make_shared<SweepArgs>();
  auto& o = args->options;
  cmd.add_option("grid", o.grid,
                 "KEY=v1,v2,... per swept key (the cells are their Cartesian product, the first "
                 "key varying slowest); KEY=v sets v for every cell");
  cmd.add_option("--config,-c", o.base, "base recipe YAML")->check(CLI::ExistingFile);
  cmd.add_option("--output,-o", o.output, "sweep directory: one run directory per cell");
  cmd.add_option("--prefix", o.prefix,
                 "put PREFIX_ before every cell's name, so that several grids (other fixed values "
                 "or recipes) can share one --output and --archive");
  cmd.add_option("--archive", o.archive,
                 "also copy each finished cell's metrics.jsonl, config.yaml and sweep.json to "
                 "ARCHIVE/<cell> (e.g. docs/large_batch/<grid>); a cell finished there is skipped");
  cmd.add_option("--nproc-per-node", o.nproc_per_node,
                 "run each cell under `largedet launch --nproc-per-node N` (default: one process "
                 "in this process's launcher environment)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--max-cells", o.max_cells,
                 "refuse a grid of more cells than this before expanding it")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  cmd.add_flag("--dry-run", o.dry_run, "print each cell's state and command; run nothing");
  cmd.add_flag("--echo", o.echo, "stream the cells' output here too (it always goes to log.txt)");
  auto* summary = cmd.add_option("--summary", args->summary,
                                 "write DIR/summary.md and DIR/summary.csv for the sweep (or "
                                 "archive) directory DIR and print the table; trains nothing");
  summary->excludes("--config")->excludes("--output")->excludes("--dry-run");
  cmd.footer(
      "Cell directories are named by their overrides: SOLVER.OPTIMIZER=lamb "
      "SOLVER.IMS_PER_BATCH=64 -> OPTIMIZER-lamb_IMS_PER_BATCH-64 (docs/large_batch.md, \"Running "
      "a sweep\").\n"
      "Rerun the same command to resume: finished cells are skipped, a stopped one resumes.");
  cmd.callback([args] {
    if (!args->summary.empty()) return summarize(args->summary);
    auto& options = args->options;
    if (options.base.empty() || options.output.empty())
      throw largedet::Error("a sweep needs --config and --output", "largedet sweep",
                            "or --summary DIR to tabulate a sweep");
    // Cells run (and their logs name) the `largedet` a user runs, not libexec/largedet-torch.
    options.executable = largedet::tools::front_executable().string();
    const int world = world_size(options);
    options.max_iter = [base = options.base, world](const std::vector<std::string>& overrides) {
      return resolved_max_iter(base, overrides, world);
    };
    const int code = largedet::tools::sweep::run_sweep(options);
    if (code != 0) std::exit(code);
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("sweep",
                          "Train a grid of KEY=v1,v2,... overrides over a recipe, one resumable "
                          "run per cell, or tabulate a sweep with --summary",
                          setup_sweep);
