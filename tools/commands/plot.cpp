// largedet plot: training curves (loss, learning rate, AP) of one or more runs in one PNG, the
// metrics matching --scalars patterns (one panel per pattern), or AP against batch per method over
// the cells of one or more sweeps.
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "command_registry.h"
#include "largedet/core/error.h"
#include "sweep/summary.h"
#include "visualize/plot.h"

namespace {

struct PlotArgs {
  std::vector<std::string> runs;
  std::string output = "curves.png";
  largedet::tools::CurvesOptions curves;
  std::vector<std::string> scalars;
  std::vector<std::string> ap_vs_batch;  // sweep or archive directories, their cells pooled
  std::vector<std::string> series = {"SOLVER.OPTIMIZER"};
  std::string best;  // --best KEY
};

void plot_curves(const PlotArgs& args) {
  if (args.runs.empty())
    throw largedet::Error("nothing to plot", "largedet plot",
                          "pass run directories, or --ap-vs-batch SWEEP_DIR");
  std::vector<largedet::tools::RunCurves> runs;
  for (const auto& dir : args.runs) runs.push_back(largedet::tools::read_run(dir));
  if (args.scalars.empty())
    largedet::tools::write_curves_png(args.output, runs, args.curves);
  else
    largedet::tools::write_scalars_png(args.output, runs, args.scalars);
  std::cout << "wrote " << args.output << ":";
  for (const auto& run : runs) std::cout << " " << run.name;
  std::cout << "\n";
}

void plot_ap_vs_batch(const PlotArgs& args) {
  std::vector<largedet::tools::sweep::CellSummary> cells;
  std::string dirs;
  for (const auto& dir : args.ap_vs_batch) {
    auto more = largedet::tools::sweep::read_sweep(dir);
    cells.insert(cells.end(), std::make_move_iterator(more.begin()),
                 std::make_move_iterator(more.end()));
    dirs += (dirs.empty() ? "" : ", ") + dir;
  }
  const auto points = largedet::tools::sweep::batch_points(cells, args.series, args.best);
  if (points.empty())
    throw largedet::Error("no cell of the sweep has a bbox/AP yet", dirs,
                          "set TEST.EVAL_PERIOD so that the cells evaluate at their end");
  largedet::tools::write_ap_vs_batch_png(args.output, points);
  std::cout << "wrote " << args.output << ": " << points.size() << " of " << cells.size()
            << " cells\n";
}

void setup_plot(CLI::App& cmd) {
  auto args = std::make_shared<PlotArgs>();
  cmd.add_option("runs", args->runs,
                 "run directories (OUTPUT_DIR of `largedet train`, or cells of a sweep)");
  cmd.add_option("--output,-o", args->output, "PNG to write")->capture_default_str();
  cmd.add_flag("--loss-only", args->curves.loss_only,
               "one wide panel of total loss: the runs' loss curves on shared axes");
  auto* scalars =
      cmd.add_option("--scalars", args->scalars,
                     "instead of loss, LR and AP: one panel per PATTERN (repeatable), stacked, "
                     "of every metrics.jsonl key matching it against iteration ('*' matches any "
                     "characters: 'agvm/*/factor', 'loss_*')")
          ->type_name("PATTERN")
          ->expected(1)
          ->allow_extra_args(false)  // one pattern per --scalars: run directories may follow
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* ap = cmd.add_option("--ap-vs-batch", args->ap_vs_batch,
                            "instead of curves: final bbox AP against SOLVER.IMS_PER_BATCH (log2 "
                            "axis) for the cells of this sweep (or archive) directory; repeat it "
                            "to pool the cells of several")
                 ->type_name("DIR")
                 ->expected(1)
                 ->allow_extra_args(false)
                 ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd.add_option("--series", args->series,
                 "with --ap-vs-batch: the keys whose values name a method (one line each)")
      ->delimiter(',')
      ->capture_default_str()
      ->needs(ap);
  cmd.add_option("--best", args->best,
                 "with --ap-vs-batch: of each method's cells at a batch, only those at its best "
                 "value of this key (highest mean AP), e.g. SOLVER.BASE_LR: an LR search plots as "
                 "its best LR over the seeds")
      ->type_name("KEY")
      ->needs(ap);
  ap->excludes("runs")->excludes("--loss-only")->excludes(scalars);
  scalars->excludes("--loss-only");
  cmd.callback(
      [args] { args->ap_vs_batch.empty() ? plot_curves(*args) : plot_ap_vs_batch(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("plot",
                          "Plot loss, learning rate and AP (or the metrics matching --scalars "
                          "patterns) against iteration for one or more runs, or AP against batch "
                          "per method for a sweep, into one PNG",
                          setup_plot);
