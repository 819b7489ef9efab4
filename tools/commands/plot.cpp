// largedet plot: training curves (loss, learning rate, AP) of one or more runs in one PNG.
#include <iostream>
#include <memory>

#include "command_registry.h"
#include "visualize/plot.h"

namespace {

struct PlotArgs {
  std::vector<std::string> runs;
  std::string output = "curves.png";
};

void setup_plot(CLI::App& cmd) {
  auto args = std::make_shared<PlotArgs>();
  cmd.add_option("runs", args->runs, "run directories (OUTPUT_DIR of `largedet train`)")
      ->required();
  cmd.add_option("--output,-o", args->output, "PNG to write")->capture_default_str();
  cmd.callback([args] {
    std::vector<largedet::tools::RunCurves> runs;
    for (const auto& dir : args->runs) runs.push_back(largedet::tools::read_run(dir));
    largedet::tools::write_curves_png(args->output, runs);
    std::cout << "wrote " << args->output << ":";
    for (const auto& run : runs) std::cout << " " << run.name;
    std::cout << "\n";
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("plot",
                          "Plot total loss, learning rate and AP against iteration for one or more "
                          "runs (their metrics.jsonl) into one PNG",
                          setup_plot);
