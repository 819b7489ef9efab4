// Mirrors object_detection/utils/per_image_evaluation.py (two-stage matching) and
// object_detection_evaluation.py + metrics.py (precision/recall, AP) of the TF OD API: the
// challenge's evaluator (group_of_weight 1, evaluatable classes) and OpenImagesDetectionEvaluator
// (group_of_weight 0, every class).
#include "largedet/evaluation/openimages_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "largedet/core/error.h"
#include "largedet/core/threads.h"
#include "parallel.h"

namespace largedet::evaluation {
namespace {

struct Box {
  double ymin, xmin, ymax, xmax;
};

double area(const Box& b) { return (b.ymax - b.ymin) * (b.xmax - b.xmin); }

double intersection(const Box& a, const Box& b) {
  const double h = std::max(0.0, std::min(a.ymax, b.ymax) - std::max(a.ymin, b.ymin));
  const double w = std::max(0.0, std::min(a.xmax, b.xmax) - std::max(a.xmin, b.xmin));
  return h * w;
}

// A scored detection after matching: tp true/false.
struct Scored {
  double score;
  bool tp;
};

// _compute_tp_fp_for_single_class for one image and class. `dets` in descending score order.
// Detections absorbed by a group-of box are dropped; with `group_of_counts` (the challenge's
// group_of_weight 1) each group-of box hit with a positive score adds one true positive.
void match_image_class(const std::vector<Box>& dets, const std::vector<double>& scores,
                       const std::vector<Box>& boxes, const std::vector<Box>& groups,
                       double threshold, bool group_of_counts, std::vector<Scored>& out) {
  const size_t n = dets.size();
  std::vector<char> tp(n, 0), to_group(n, 0);
  if (!boxes.empty()) {
    std::vector<char> detected(boxes.size(), 0);
    for (size_t i = 0; i < n; ++i) {
      // np.argmax: the first box of the highest IoU.
      size_t best = 0;
      double best_iou = -1;
      for (size_t g = 0; g < boxes.size(); ++g) {
        const double inter = intersection(dets[i], boxes[g]);
        const double iou = inter / (area(dets[i]) + area(boxes[g]) - inter);
        if (iou > best_iou) best_iou = iou, best = g;
      }
      if (best_iou >= threshold && !detected[best]) {
        tp[i] = 1;
        detected[best] = 1;
      }
    }
  }
  std::vector<double> group_score(groups.size(), 0);
  if (!groups.empty()) {
    for (size_t i = 0; i < n; ++i) {
      if (tp[i]) continue;
      size_t best = 0;
      double best_ioa = -1;
      for (size_t g = 0; g < groups.size(); ++g) {
        const double ioa = intersection(dets[i], groups[g]) / area(dets[i]);
        if (ioa > best_ioa) best_ioa = ioa, best = g;
      }
      if (best_ioa >= threshold) {
        to_group[i] = 1;
        group_score[best] = std::max(group_score[best], scores[i]);
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (!to_group[i]) out.push_back({scores[i], tp[i] != 0});
  }
  if (!group_of_counts) return;
  for (double s : group_score) {
    if (s > 0) out.push_back({s, true});  // the evaluator keeps group-of entries with score > 0
  }
}

// metrics.compute_precision_recall + compute_average_precision.
double average_precision(std::vector<Scored>& scored, size_t num_gt) {
  std::stable_sort(scored.begin(), scored.end(),
                   [](const Scored& a, const Scored& b) { return a.score > b.score; });
  std::vector<double> recall = {0}, precision = {0};
  double tp = 0, fp = 0;
  for (const Scored& s : scored) {
    (s.tp ? tp : fp) += 1;
    precision.push_back(tp / (tp + fp));
    recall.push_back(tp / double(num_gt));
  }
  recall.push_back(1);
  precision.push_back(0);
  for (size_t i = precision.size() - 1; i-- > 0;)
    precision[i] = std::max(precision[i], precision[i + 1]);
  double ap = 0;
  for (size_t i = 1; i < recall.size(); ++i) {
    if (recall[i] != recall[i - 1]) ap += (recall[i] - recall[i - 1]) * precision[i];
  }
  return ap;
}

}  // namespace

std::string OidEvalResult::summary() const {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "OpenImages mAP@0.5 = %.4f over %zu classes\n", map,
                per_class.size());
  out += line;
  for (const auto& c : per_class) {
    std::snprintf(line, sizeof line, "  %-24s AP %.4f  (%zu boxes, %zu detections)\n",
                  c.label.c_str(), c.ap, c.num_groundtruth, c.num_detections);
    out += line;
  }
  return out;
}

std::string OidEvalResult::left_out() const {
  std::string out;
  auto add = [&](size_t n, const char* what) {
    if (n) out += (out.empty() ? "left out: " : ", ") + std::to_string(n) + " " + what;
  };
  add(boxes_of_other_classes, "boxes of classes not in the class list");
  add(labels_of_other_classes, "image-level labels of classes not in the class list");
  add(detections_of_other_classes, "detections of classes not in the class list");
  add(detections_of_other_images, "detections of images without ground truth");
  add(empty_detections, "detections with XMin >= XMax or YMin >= YMax");
  return out;
}

OidProtocol oid_protocol_from_name(const std::string& name, const std::string& where) {
  if (name == "challenge") return OidProtocol::kChallenge;
  if (name == "v2") return OidProtocol::kV2;
  throw Error("unknown OpenImages protocol \"" + name + "\"", where,
              "use challenge (the challenges' metric) or v2 (OpenImagesDetectionEvaluator, for "
              "the V2-V6 sets)");
}

OidEvalResult evaluate_openimages(const std::vector<OidBox>& groundtruth,
                                  const std::vector<OidImageLabel>& image_labels,
                                  const std::vector<OidDetection>& detections,
                                  const OidEvalParams& params) {
  const bool challenge = params.protocol == OidProtocol::kChallenge;
  OidEvalResult result;
  // Dense ids for classes (the list's, or the ground truth's) and for the images of the kept
  // ground truth: detections of any other image are never scored, as in the TF code.
  std::unordered_map<std::string, size_t> image_of, class_of;
  std::vector<std::string> class_names, image_names;
  const bool listed = !params.classes.empty();
  auto add_class = [&](const std::string& label) {
    auto [it, added] = class_of.emplace(label, class_names.size());
    if (added) class_names.push_back(label);
    return it->second;
  };
  for (const auto& label : params.classes) add_class(label);
  auto ground_truth_class = [&](const std::string& label) -> std::optional<size_t> {
    if (!listed) return add_class(label);
    auto it = class_of.find(label);
    if (it == class_of.end()) return std::nullopt;
    return it->second;
  };
  auto add_image = [&](const std::string& id) {
    auto [it, added] = image_of.emplace(id, image_names.size());
    if (added) image_names.push_back(id);
    return it->second;
  };

  // The class of each ground-truth row (none: not in the class list, counted), and its image.
  auto classify = [&](const auto& rows, size_t& left_out) {
    std::vector<std::optional<size_t>> classes(rows.size());
    for (size_t k = 0; k < rows.size(); ++k) {
      classes[k] = ground_truth_class(rows[k].label);
      if (classes[k])
        add_image(rows[k].image_id);
      else
        ++left_out;
    }
    return classes;
  };
  const auto box_class = classify(groundtruth, result.boxes_of_other_classes);
  const auto label_class = classify(image_labels, result.labels_of_other_classes);
  const size_t num_images = image_names.size();

  struct ImageBoxes {
    std::vector<std::pair<size_t, Box>> boxes, groups;
  };
  std::vector<ImageBoxes> gt(num_images);
  std::vector<std::unordered_set<size_t>> evaluatable(num_images);  // challenge: classes scored
  std::vector<size_t> num_gt(class_names.size(), 0);
  for (size_t k = 0; k < groundtruth.size(); ++k) {
    if (!box_class[k]) continue;
    const OidBox& b = groundtruth[k];
    const size_t i = image_of.at(b.image_id), c = *box_class[k];
    evaluatable[i].insert(c);
    (b.is_group_of ? gt[i].groups : gt[i].boxes)
        .emplace_back(c, Box{b.ymin, b.xmin, b.ymax, b.xmax});
    if (challenge || !b.is_group_of) ++num_gt[c];
  }
  for (size_t k = 0; k < image_labels.size(); ++k) {
    if (label_class[k]) evaluatable[image_of.at(image_labels[k].image_id)].insert(*label_class[k]);
  }

  // Scored detections grouped by image, file order.
  std::vector<std::vector<size_t>> dets_of(num_images);
  std::vector<size_t> num_dets(class_names.size(), 0);
  for (size_t d = 0; d < detections.size(); ++d) {
    const auto& det = detections[d];
    LARGEDET_CHECK(std::isfinite(det.score), "detection ", d, " of image ", det.image_id,
                   " has a score that is not finite");
    auto img = image_of.find(det.image_id);
    auto cls = class_of.find(det.label);
    if (img == image_of.end()) {
      ++result.detections_of_other_images;
    } else if (cls == class_of.end()) {
      ++result.detections_of_other_classes;
    } else if (det.xmin >= det.xmax || det.ymin >= det.ymax) {
      ++result.empty_detections;  // _remove_invalid_boxes
    } else if (!challenge || evaluatable[img->second].count(cls->second)) {
      dets_of[img->second].push_back(d);
      ++num_dets[cls->second];
    }
  }

  std::vector<std::vector<std::pair<size_t, Scored>>> per_image(num_images);
  const int threads = params.threads > 0 ? params.threads : usable_cores();
  parallel_for(num_images, threads, [&](size_t i) {
    std::vector<size_t> order = dets_of[i];
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return detections[a].score > detections[b].score; });
    std::vector<size_t> classes;
    for (size_t d : order) classes.push_back(class_of.at(detections[d].label));
    std::sort(classes.begin(), classes.end());
    classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
    for (size_t c : classes) {
      std::vector<Box> dets, boxes, groups;
      std::vector<double> scores;
      for (size_t d : order) {
        const auto& det = detections[d];
        if (class_of.at(det.label) != c) continue;
        dets.push_back({det.ymin, det.xmin, det.ymax, det.xmax});
        scores.push_back(det.score);
      }
      for (const auto& [k, box] : gt[i].boxes)
        if (k == c) boxes.push_back(box);
      for (const auto& [k, box] : gt[i].groups)
        if (k == c) groups.push_back(box);
      std::vector<Scored> scored;
      match_image_class(dets, scores, boxes, groups, params.iou_threshold, challenge, scored);
      for (const auto& s : scored) per_image[i].emplace_back(c, s);
    }
  });

  // Per class, image by image in ImageID order (as the TF code groups them), so that equal
  // scores rank by ImageID and then by file order.
  std::vector<size_t> by_id(num_images);
  std::iota(by_id.begin(), by_id.end(), 0);
  std::sort(by_id.begin(), by_id.end(),
            [&](size_t a, size_t b) { return image_names[a] < image_names[b]; });
  std::vector<std::vector<Scored>> per_class(class_names.size());
  for (size_t i : by_id)
    for (const auto& [c, s] : per_image[i]) per_class[c].push_back(s);
  double sum = 0;
  for (size_t c = 0; c < class_names.size(); ++c) {
    if (num_gt[c] == 0) continue;  // AP is NaN there, left out of the mean
    OidClassResult r;
    r.label = class_names[c];
    r.num_groundtruth = num_gt[c];
    r.num_detections = num_dets[c];
    r.ap = average_precision(per_class[c], num_gt[c]);
    sum += r.ap;
    result.per_class.push_back(r);
  }
  std::sort(result.per_class.begin(), result.per_class.end(),
            [](const OidClassResult& a, const OidClassResult& b) { return a.label < b.label; });
  result.map = result.per_class.empty() ? std::nan("") : sum / double(result.per_class.size());
  return result;
}

}  // namespace largedet::evaluation
