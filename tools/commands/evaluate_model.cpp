// largedet evaluate --config/--weights: the model run over the configured test set on every rank
// (engine/evaluator.h). Registered as a Torch mode of evaluate.cpp's command: the front hands such
// command lines to largedet-torch, which runs this.
#include <filesystem>

#include "command_registry.h"
#include "commands/evaluate.h"
#include "largedet/core/config.h"
#include "largedet/core/logging.h"
#include "largedet/engine/evaluator.h"
#include "largedet/engine/runtime.h"
#include "largedet/tensor/threads.h"

namespace {

using largedet::tools::EvaluateArgs;

// Where --config mode writes the detections: --detections, or else detectron2's name beside
// --output (coco_instances_results.json; OpenImages: openimages_results.csv); nowhere without
// either.
std::string detections_path(const EvaluateArgs& args, bool openimages) {
  if (!args.detections.empty()) return args.detections;
  if (args.output.empty()) return "";
  const auto dir = std::filesystem::path(args.output).parent_path();
  return (dir / (openimages ? "openimages_results.csv" : "coco_instances_results.json")).string();
}

// Runs the model on every rank; rank 0 prints the summary and writes --output.
void evaluate_model(const EvaluateArgs& args) {
  auto config = largedet::Config::from_file(args.config, args.overrides);
  const auto runtime = largedet::engine::setup_runtime(config);
  largedet::engine::resolve_recipe(config, runtime.world_size());
  // An explicit --threads bounds the whole command, the model's forward included.
  if (args.threads > 0) largedet::configure_threads(args.threads);
  auto model = largedet::engine::load_detector(config, args.weights, runtime.device);
  largedet::engine::EvalOptions options;
  options.per_category = args.per_category;
  options.threads = args.threads;
  options.report_path = args.output;
  const bool openimages = config.get<std::string>("DATASETS.FORMAT") == "openimages";
  options.results_path = detections_path(args, openimages);
  const auto test = largedet::engine::load_test_set(config, runtime.rank() == 0);
  largedet::engine::evaluate_detector(*model, config, test, runtime.device, options);
  if (runtime.rank() == 0 && !options.results_path.empty())
    largedet::log::info() << "detections written to " << options.results_path;
}

}  // namespace

LARGEDET_REGISTER_TORCH_MODE("evaluate --config", [](const std::any& args) {
  evaluate_model(*std::any_cast<const EvaluateArgs*>(args));
});
