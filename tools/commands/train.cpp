// largedet train: the trainer (engine/trainer.h) from a recipe plus KEY=VALUE overrides.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "command_registry.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/engine/trainer.h"

namespace {

struct TrainArgs {
  std::string file;
  std::vector<std::string> overrides;
  std::string output;
  bool resume = false;
  bool from_scratch = false;
  int num_gpus = 0;  // detectron2's train_net.py flags, answered with ours
  bool eval_only = false;
};

void setup_train(CLI::App& cmd) {
  auto args = std::make_shared<TrainArgs>();
  cmd.add_option("--config,-c,--config-file", args->file,
                 "recipe YAML (see configs/); --config-file as detectron2 spells it")
      ->required()
      ->check(CLI::ExistingFile);
  // Hidden: detectron2's train_net.py flags, so that a habit gets our equivalent, not "unknown".
  cmd.add_option("--num-gpus", args->num_gpus)->group("");
  cmd.add_flag("--eval-only", args->eval_only)->group("");
  cmd.add_option("overrides", args->overrides,
                 "KEY=VALUE overrides, e.g. SOLVER.IMS_PER_BATCH=1024 SOLVER.BASE_LR=0.02");
  cmd.add_option("--output,-o", args->output,
                 "run directory: checkpoints, metrics.jsonl, TensorBoard events, config.yaml "
                 "(default: OUTPUT_DIR)");
  auto* resume = cmd.add_flag("--resume", args->resume,
                              "continue from the run directory's newest checkpoint that verifies "
                              "(starts fresh when there is none)");
  cmd.add_flag("--from-scratch", args->from_scratch,
               "start at iteration 0 although the run directory holds checkpoints (they are "
               "moved to a superseded_<time>/ subdirectory)")
      ->excludes(resume);
  cmd.footer(
      "Several processes: largedet launch --nproc-per-node N -- largedet train ... (`largedet` "
      "after -- is this binary unless one is on PATH; or torchrun, "
      "mpirun, srun). SIGINT/SIGTERM save a checkpoint and exit with 130/143 (a second signal is "
      "ignored, a third forces an exit without a checkpoint); --resume continues.");
  cmd.callback([args] {
    if (args->num_gpus > 0) {
      throw largedet::Error("--num-gpus is detectron2's flag", "largedet train",
                            "start one process per GPU: largedet launch --nproc-per-node " +
                                std::to_string(args->num_gpus) + " -- largedet train --config " +
                                args->file);
    }
    if (args->eval_only) {
      throw largedet::Error("--eval-only is detectron2's flag", "largedet train",
                            "evaluate weights with: largedet evaluate --config " + args->file +
                                " --weights WEIGHTS (several processes: under largedet launch)");
    }
    const auto config = largedet::Config::from_file(args->file, args->overrides);
    largedet::engine::TrainOptions options;
    options.output_dir = args->output;
    options.resume = args->resume;
    options.from_scratch = args->from_scratch;
    const auto result = largedet::engine::train(config, options);
    if (result.interrupted) {
      // "Stopped, resume me" is not "finished" for a scheduler or a sweep: the shell's code for
      // the signal (130 SIGINT, 143 SIGTERM, also on a rank stopped by another rank's signal).
      std::cout << std::flush;
      std::cerr << std::flush;
      std::exit(128 + (result.stop_signal != 0 ? result.stop_signal : SIGTERM));
    }
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("train",
                          "Train a detector: iteration-based, data-parallel over ranks, with "
                          "checkpoints, metrics, periodic evaluation and --resume",
                          setup_train);
