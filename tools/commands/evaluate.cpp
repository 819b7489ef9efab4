// largedet evaluate: score detections the way pycocotools (COCO bbox/segm) or the OpenImages
// challenge (oid) would: either a results file (--annotations/--results), here, Torch-free, or a
// model run over the configured test set on every rank (--config/--weights: evaluate_model.cpp,
// in largedet-torch).
#include <algorithm>
#include <chrono>
#include <iostream>

#include "command_registry.h"
#include "commands/evaluate.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/limits.h"
#include "largedet/core/logging.h"
#include "largedet/evaluation/coco_eval.h"
#include "largedet/evaluation/openimages_eval.h"
#include "largedet/evaluation/report.h"
#include "stopwatch.h"

namespace {

using namespace largedet::evaluation;

using largedet::tools::EvaluateArgs;
using largedet::tools::seconds_since;

void evaluate_coco_files(const EvaluateArgs& args, EvaluationReport& report) {
  auto start = std::chrono::steady_clock::now();
  CocoParseOptions parse;
  parse.max_image_pixels = args.max_image_pixels;
  const CocoDataset gt = load_coco_json(args.annotations, parse);
  const std::vector<Detection> detections = load_coco_results(args.results, gt, args.threads);
  largedet::log::info() << "read " << gt.images.size() << " images, " << gt.annotations.size()
                        << " annotations, " << detections.size() << " detections in "
                        << seconds_since(start) << " s";
  for (const std::string& type : args.types) {
    start = std::chrono::steady_clock::now();
    CocoEvalParams params;
    params.iou_type = type == "segm" ? IouType::kSegm : IouType::kBbox;
    params.threads = args.threads;
    const CocoEvalResult result = evaluate_coco(gt, detections, params);
    largedet::log::info() << type << " evaluation took " << seconds_since(start) << " s";
    std::cout << "Evaluate annotation type *" << type << "*\n" << result.summary();
    if (args.per_category) std::cout << result.category_table();
    report.add(result);
  }
}

void evaluate_oid_files(const EvaluateArgs& args, EvaluationReport& report) {
  auto start = std::chrono::steady_clock::now();
  const OidGroundTruth gt = load_oid_ground_truth(args.annotations, args.labels, args.hierarchy);
  const auto detections = load_oid_detections_csv(args.results);
  OidEvalParams params;
  params.threads = args.threads;
  params.protocol = oid_protocol_from_name(args.protocol, "--protocol");
  if (!args.classes.empty()) {
    for (const OidClass& c : load_oid_class_descriptions(args.classes))
      params.classes.push_back(c.mid);
  }
  const OidEvalResult result = evaluate_openimages(gt.boxes, gt.image_labels, detections, params);
  if (const auto left_out = result.left_out(); !left_out.empty()) largedet::log::info() << left_out;
  largedet::log::info() << "OpenImages evaluation took " << seconds_since(start) << " s";
  std::cout << (args.per_category ? result.summary()
                                  : result.summary().substr(0, result.summary().find('\n') + 1));
  report.add(result);
}

void setup_evaluate(CLI::App& cmd) {
  auto args = std::make_shared<EvaluateArgs>();
  auto* annotations = cmd.add_option(
      "--annotations,-a", args->annotations,
      "ground truth: COCO annotation JSON (bbox, segm) or OpenImages boxes CSV (oid)");
  annotations->check(CLI::ExistingFile);
  auto* results = cmd.add_option(
      "--results,-r", args->results,
      "detections: COCO results JSON (bbox, segm) or OpenImages detections CSV (oid)");
  results->check(CLI::ExistingFile);
  auto* config = cmd.add_option("--config,-c", args->config,
                                "recipe YAML: run --weights over its test set instead (every "
                                "rank under a launcher; the types follow the recipe)");
  config->check(CLI::ExistingFile);
  auto* weights = cmd.add_option("--weights,-w", args->weights,
                                 "checkpoint or weights file (model_final.safetensors)");
  weights->check(CLI::ExistingFile);
  cmd.add_option("overrides", args->overrides, "--config mode: KEY=VALUE overrides");
  annotations->needs(results)->excludes(config);
  results->needs(annotations)->excludes(config);
  config->needs(weights);
  weights->needs(config);
  cmd.add_option("--type,-t", args->types, "bbox, segm (both: bbox,segm) or oid")
      ->delimiter(',')
      ->check(CLI::IsMember({"bbox", "segm", "oid"}))
      ->capture_default_str();
  cmd.add_option("--labels", args->labels,
                 "oid: verified image-level labels CSV (ImageID,LabelName,Confidence)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--hierarchy", args->hierarchy,
                 "oid: class hierarchy JSON; the ground truth and labels are expanded along it "
                 "first, as the challenge scores them (files already expanded are kept as they "
                 "are)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--classes", args->classes,
                 "oid: class descriptions CSV (MID,Name), the classes scored; rows of other "
                 "classes are left out (default: every class of the ground truth)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--protocol", args->protocol,
                 "oid: challenge (OpenImagesChallengeEvaluator) or v2 "
                 "(OpenImagesDetectionEvaluator, the V2-V6 sets' metric)")
      ->check(CLI::IsMember({"challenge", "v2"}))
      ->capture_default_str();
  cmd.add_option("--output,-o", args->output,
                 "write the statistics as JSON here, one layout in both modes (--config mode: "
                 "the detections too, beside it as coco_instances_results.json, as detectron2 "
                 "names them, or openimages_results.csv)");
  cmd.add_option("--detections", args->detections,
                 "--config mode: write the detections here instead (COCO results JSON, or "
                 "OpenImages CSV)")
      ->needs(config);
  cmd.add_option("--threads", args->threads,
                 "scoring threads; with --config also the model's intra-op threads, instead "
                 "of the recipe's (default: every usable core)");
  cmd.add_option("--max-image-pixels", args->max_image_pixels,
                 "bbox, segm: ground-truth images claiming more pixels are refused, as sizes "
                 "no real image has (--config mode: INPUT.MAX_IMAGE_PIXELS)")
      ->check(CLI::Range(int64_t{1}, largedet::kMaxImagePixelsLimit))
      ->capture_default_str();
  cmd.add_flag("--per-category", args->per_category,
               "print a per-category AP table, and put it in --output's JSON");
  cmd.callback([args] {
    if (!args->config.empty()) {
      const EvaluateArgs* model_args = args.get();
      return largedet::tools::run_torch_mode("evaluate --config", model_args);
    }
    if (args->annotations.empty()) {
      throw largedet::Error("nothing to evaluate", "largedet evaluate",
                            "pass --annotations and --results, or --config and --weights");
    }
    const bool oid = std::find(args->types.begin(), args->types.end(), "oid") != args->types.end();
    if (!oid && (!args->hierarchy.empty() || !args->labels.empty() || !args->classes.empty())) {
      throw largedet::Error("--hierarchy, --labels and --classes are for OpenImages",
                            "largedet evaluate", "add --type oid");
    }
    if (oid && args->types.size() > 1) {
      throw largedet::Error("--type oid cannot be combined with bbox or segm", "--type");
    }
    EvaluationReport report(args->per_category);
    if (oid)
      evaluate_oid_files(*args, report);
    else
      evaluate_coco_files(*args, report);
    if (!args->output.empty()) largedet::write_file_atomic(args->output, report.to_json());
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("evaluate",
                          "Score detections like pycocotools (COCO bbox/segm AP, identical "
                          "numbers) or the OpenImages challenge (mAP@0.5)",
                          setup_evaluate);
