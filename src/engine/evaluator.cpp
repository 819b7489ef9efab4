#include "largedet/engine/evaluator.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <set>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/core/threads.h"
#include "largedet/data/build.h"
#include "largedet/data/device_prefetcher.h"
#include "largedet/distributed/collectives.h"
#include "largedet/engine/agreement.h"
#include "largedet/evaluation/coco_eval.h"
#include "largedet/evaluation/report.h"
#include "largedet/modeling/detector.h"

namespace largedet::engine {

namespace {

using evaluation::Detection;
using evaluation::OidDetection;

// What one rank sends to rank 0: the image ids it ran (so that an image a bad-input replacement
// brought to two ranks is scored once) and its detections as text.
struct Shard {
  std::vector<int64_t> image_ids;
  std::string detections;
};

std::string encode_shard(const Shard& shard) {
  std::ostringstream out;
  out << shard.image_ids.size();
  for (int64_t id : shard.image_ids) out << ' ' << id;
  out << '\n' << shard.detections;
  return out.str();
}

Shard decode_shard(const std::string& blob) {
  Shard shard;
  const size_t newline = blob.find('\n');
  LARGEDET_CHECK(newline != std::string::npos, "evaluation: malformed detections from a rank");
  std::istringstream head(blob.substr(0, newline));
  size_t n = 0;
  head >> n;
  shard.image_ids.resize(n);
  for (auto& id : shard.image_ids) head >> id;
  shard.detections = blob.substr(newline + 1);
  return shard;
}

// The images of `ids` not yet claimed by an earlier rank; claims them. (A bad-input replacement
// can bring an image to two ranks; its detections must count once.)
std::set<int64_t> claim(const std::vector<int64_t>& ids, std::set<int64_t>& claimed) {
  std::set<int64_t> mine;
  for (int64_t id : ids)
    if (claimed.insert(id).second) mine.insert(id);
  return mine;
}

// What the evaluators resolve threads <= 0 to.
int scoring_threads(const EvalOptions& options) {
  return options.threads > 0 ? options.threads : usable_cores();
}

std::map<std::string, double> score_coco(const std::vector<std::string>& blobs,
                                         const Config& config, const TestSet& test,
                                         const EvalOptions& options) {
  const evaluation::CocoDataset& gt = *test.coco;
  std::vector<Detection> detections;
  std::set<int64_t> claimed;
  for (const auto& blob : blobs) {
    Shard shard = decode_shard(blob);
    const auto mine = claim(shard.image_ids, claimed);
    for (auto& d : evaluation::parse_coco_results(shard.detections, gt, "gathered detections"))
      if (mine.count(d.image_id)) detections.push_back(std::move(d));
  }
  if (!options.results_path.empty())
    evaluation::save_coco_results(options.results_path, detections, &gt);
  std::vector<evaluation::IouType> types = {evaluation::IouType::kBbox};
  if (config.get<bool>("MODEL.MASK_ON")) types.push_back(evaluation::IouType::kSegm);
  std::map<std::string, double> scalars;
  evaluation::EvaluationReport report(options.per_category);
  for (auto type : types) {
    evaluation::CocoEvalParams params;
    params.iou_type = type;
    params.threads = options.threads;
    const std::string name = evaluation::iou_type_name(type);
    log::debug() << "scoring " << name << " on " << scoring_threads(options) << " thread(s)";
    const auto result = evaluation::evaluate_coco(gt, detections, params);
    if (options.print) {
      std::cout << "Evaluate annotation type *" << name << "*\n" << result.summary();
      if (options.per_category) std::cout << result.category_table();
    }
    for (size_t i = 0; i < result.stats.size(); ++i)
      scalars[name + "/" + evaluation::kStatNames[i]] = result.stats[i];
    report.add(result);
  }
  if (!options.report_path.empty()) write_file_atomic(options.report_path, report.to_json());
  return scalars;
}

std::map<std::string, double> score_openimages(const std::vector<std::string>& blobs,
                                               const TestSet& test, const EvalOptions& options) {
  std::vector<OidDetection> detections;
  std::set<std::string> claimed;  // ImageIDs scored already (from an earlier rank)
  for (size_t r = 0; r < blobs.size(); ++r) {
    std::set<std::string> mine;
    for (auto& d : evaluation::parse_oid_detections_csv(
             decode_shard(blobs[r]).detections, "detections from rank " + std::to_string(r))) {
      if (!claimed.count(d.image_id)) {
        mine.insert(d.image_id);
        detections.push_back(std::move(d));
      }
    }
    claimed.insert(mine.begin(), mine.end());
  }
  if (!options.results_path.empty()) {
    write_file_atomic(options.results_path, evaluation::oid_detections_to_csv(detections));
  }
  evaluation::OidEvalParams params;
  params.threads = options.threads;
  params.protocol = test.oid_protocol;
  params.classes = test.dataset->class_mids;
  log::debug() << "scoring oid on " << scoring_threads(options) << " thread(s)";
  const auto result =
      evaluation::evaluate_openimages(test.oid.boxes, test.oid.image_labels, detections, params);
  if (const auto left_out = result.left_out(); !left_out.empty()) log::info() << left_out;
  if (options.print) {
    // The summary's first line is the mAP; the per-class APs follow it.
    const std::string summary = result.summary();
    std::cout << (options.per_category ? summary : summary.substr(0, summary.find('\n') + 1));
  }
  if (!options.report_path.empty()) {
    evaluation::EvaluationReport report(options.per_category);
    report.add(result);
    write_file_atomic(options.report_path, report.to_json());
  }
  return {{"oid/mAP@0.5", result.map}};
}

// A diverged model can output NaN boxes or scores: the results formats have no NaN, and AP counts
// a dropped detection as missed, which is what it is.
bool finite_detection(const double* box, double score) {
  return std::isfinite(box[0]) && std::isfinite(box[1]) && std::isfinite(box[2]) &&
         std::isfinite(box[3]) && std::isfinite(score);
}

}  // namespace

std::vector<Detection> to_coco_detections(const modeling::Detections& detections, int64_t image_id,
                                          const data::Dataset& dataset) {
  auto boxes = detections.boxes.to(torch::kCPU, torch::kDouble).contiguous();
  auto scores = detections.scores.to(torch::kCPU, torch::kDouble).contiguous();
  auto labels = detections.labels.to(torch::kCPU, torch::kLong).contiguous();
  torch::Tensor masks;
  if (detections.masks.defined()) {
    // Column-major (pycocotools' Fortran order): transpose each [H, W] mask before encoding.
    masks = (detections.masks.select(1, 0) > 0.5).to(torch::kCPU, torch::kUInt8);
    masks = masks.transpose(1, 2).contiguous();
  }
  const auto* b = boxes.data_ptr<double>();
  std::vector<Detection> out;
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const int64_t label = labels[i].item<int64_t>();
    LARGEDET_CHECK(label >= 1 && label <= dataset.num_classes(), "detection label ", label,
                   " outside the dataset's 1..", dataset.num_classes(),
                   ": does the recipe's NUM_CLASSES match the test set?");
    if (!finite_detection(b + 4 * i, scores[i].item<double>())) continue;
    Detection d = evaluation::box_detection(image_id, dataset.category_ids[label - 1],
                                            scores[i].item<double>(), b[4 * i], b[4 * i + 1],
                                            b[4 * i + 2], b[4 * i + 3]);
    if (masks.defined()) {
      const auto h = static_cast<uint32_t>(masks.size(2)), w = static_cast<uint32_t>(masks.size(1));
      d.segmentation.kind = evaluation::Segmentation::Kind::kRle;
      d.segmentation.rle = evaluation::rle_encode(masks[i].data_ptr<uint8_t>(), h, w);
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<OidDetection> to_oid_detections(const modeling::Detections& detections,
                                            const data::Record& record,
                                            const data::Dataset& dataset, int64_t height,
                                            int64_t width) {
  auto boxes = detections.boxes.to(torch::kCPU, torch::kDouble).contiguous();
  auto scores = detections.scores.to(torch::kCPU, torch::kDouble);
  auto labels = detections.labels.to(torch::kCPU, torch::kLong);
  const auto* b = boxes.data_ptr<double>();
  std::vector<OidDetection> out;
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const int64_t label = labels[i].item<int64_t>();
    LARGEDET_CHECK(label >= 1 && label <= static_cast<int64_t>(dataset.class_mids.size()),
                   "detection label ", label, " has no class MID (the dataset has ",
                   dataset.class_mids.size(), ")");
    if (!finite_detection(b + 4 * i, scores[i].item<double>())) continue;
    OidDetection d;
    d.image_id = record.source_id;
    d.label = dataset.class_mids[label - 1];
    d.score = scores[i].item<double>();
    d.xmin = b[4 * i] / width;
    d.ymin = b[4 * i + 1] / height;
    d.xmax = b[4 * i + 2] / width;
    d.ymax = b[4 * i + 3] / height;
    out.push_back(std::move(d));
  }
  return out;
}

namespace {

TestSet read_test_set(const Config& config, bool with_ground_truth) {
  TestSet test;
  test.has_ground_truth = with_ground_truth;
  const auto annotations = config.get<std::string>("DATASETS.TEST_ANNOTATIONS");
  const auto format = config.get<std::string>("DATASETS.FORMAT");
  if (format == "coco" && with_ground_truth && !annotations.empty()) {
    evaluation::CocoParseOptions parse;
    parse.max_image_pixels = config.get<int64_t>("INPUT.MAX_IMAGE_PIXELS");
    auto gt = evaluation::load_coco_json(annotations, parse);
    test.dataset = std::make_shared<data::Dataset>(data::coco_to_dataset(
        gt, annotations, data::coco_dataset_options(config, /*train=*/false)));
    test.coco = std::make_shared<evaluation::CocoDataset>(std::move(gt));
  } else {
    test.dataset = data::build_dataset(config, /*train=*/false);  // names a missing file or format
    if (with_ground_truth) {
      test.oid_protocol = evaluation::oid_protocol_from_name(
          config.get<std::string>("TEST.OID_PROTOCOL"), "TEST.OID_PROTOCOL");
      test.oid = evaluation::load_oid_ground_truth(
          annotations, config.get<std::string>("DATASETS.TEST_IMAGE_LABELS"),
          config.get<std::string>("DATASETS.TEST_HIERARCHY"));
    }
  }
  // Checked on every rank before any inference, so that all fail alike instead of one rank
  // throwing mid-way while the others wait to gather.
  const auto& dataset = *test.dataset;
  const std::string classes_key = modeling::num_classes_key(config);
  const auto num_classes = config.get<int64_t>(classes_key);
  if (dataset.num_classes() != num_classes) {
    throw Error("the test set has " + std::to_string(dataset.num_classes()) + " classes but " +
                    classes_key + " is " + std::to_string(num_classes),
                dataset.name, "evaluate on a test set with the training set's classes");
  }
  LARGEDET_CHECK(format != "openimages" || dataset.class_mids.size() == dataset.class_names.size(),
                 "OpenImages evaluation needs the class MIDs (DATASETS.CLASS_DESCRIPTIONS)");
  return test;
}

}  // namespace

TestSet load_test_set(const Config& config, bool with_ground_truth) {
  // Only the scoring rank reads the ground truth files, so a failure there must stop every rank.
  TestSet test;
  run_and_agree(distributed::default_group().get(), true, "loading the test set",
                [&] { test = read_test_set(config, with_ground_truth); });
  return test;
}

std::map<std::string, double> evaluate_detector(modeling::DetectorImpl& model, const Config& config,
                                                const TestSet& test, const c10::Device& device,
                                                const EvalOptions& options) {
  auto group = distributed::default_group();
  const int rank = group ? group->rank() : 0;
  const int world = group ? group->size() : 1;
  const bool openimages = config.get<std::string>("DATASETS.FORMAT") == "openimages";
  const auto start = std::chrono::steady_clock::now();

  const auto& dataset = test.dataset;
  auto loader = data::build_test_loader(config, dataset, rank, world);
  model.eval();
  torch::NoGradGuard no_grad;
  Shard shard;
  std::set<int64_t> seen;
  std::vector<Detection> coco;
  std::vector<OidDetection> oid;
  data::DevicePrefetcher batches([&] { return loader->next(); }, device);
  bool interrupted = false;
  while (auto batch = batches.next()) {
    if (options.should_stop && options.should_stop()) {
      interrupted = true;
      break;
    }
    auto detections = model.detect(*batch);
    for (size_t i = 0; i < detections.size(); ++i) {
      const int64_t id = batch->image_ids[i];
      if (!seen.insert(id).second) continue;  // a bad-input replacement repeated an image
      shard.image_ids.push_back(id);
      if (openimages) {
        const auto& record = dataset->records[static_cast<size_t>(id)];
        auto d = to_oid_detections(detections[i], record, *dataset, batch->original_sizes[i][0],
                                   batch->original_sizes[i][1]);
        oid.insert(oid.end(), d.begin(), d.end());
      } else {
        auto d = to_coco_detections(detections[i], id, *dataset);
        coco.insert(coco.end(), std::make_move_iterator(d.begin()),
                    std::make_move_iterator(d.end()));
      }
    }
  }
  shard.detections =
      openimages ? evaluation::oid_detections_to_csv(oid) : evaluation::coco_results_to_json(coco);
  if (dataset->bad_input->total() > 0)
    log::warning() << "test set " << dataset->bad_input->summary();

  // Every rank reaches this point, stopped or not, so that one agreement ends them all alike.
  auto stop = torch::tensor({interrupted ? 1.0 : 0.0}, torch::kDouble);
  if (group) distributed::all_reduce_sum(stop, group.get());
  if (stop.item<double>() > 0) throw EvaluationInterrupted();
  auto blobs = distributed::gather_bytes(encode_shard(shard), 0, group.get());
  std::map<std::string, double> scalars;
  run_and_agree(group.get(), rank == 0, "scoring the evaluation", [&] {
    LARGEDET_CHECK(test.has_ground_truth,
                   "evaluation: rank 0's test set was loaded without its ground truth");
    size_t images = 0;
    for (const auto& blob : blobs) images += decode_shard(blob).image_ids.size();
    log::info() << "inference on " << images << " test images over " << world << " rank(s) took "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                << " s";
    scalars = openimages ? score_openimages(blobs, test, options)
                         : score_coco(blobs, config, test, options);
  });
  return scalars;
}

}  // namespace largedet::engine
