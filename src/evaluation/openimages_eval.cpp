// Mirrors object_detection/utils/per_image_evaluation.py (two-stage matching) and
// object_detection_evaluation.py + metrics.py (precision/recall, AP) of the TF OD API, with
// group_of_weight = 1 as the OpenImages challenge evaluator sets it.
#include "largedet/evaluation/openimages_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
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
void match_image_class(const std::vector<Box>& dets, const std::vector<double>& scores,
                       const std::vector<Box>& boxes, const std::vector<Box>& groups,
                       double threshold, std::vector<Scored>& out) {
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

OidEvalResult evaluate_openimages(const std::vector<OidBox>& groundtruth,
                                  const std::vector<OidImageLabel>& image_labels,
                                  const std::vector<OidDetection>& detections,
                                  const OidEvalParams& params) {
  // Dense ids for images and classes.
  std::unordered_map<std::string, size_t> image_of, class_of;
  std::vector<std::string> class_names;
  auto image_id = [&](const std::string& id) {
    return image_of.emplace(id, image_of.size()).first->second;
  };
  auto class_id = [&](const std::string& label) {
    auto [it, added] = class_of.emplace(label, class_names.size());
    if (added) class_names.push_back(label);
    return it->second;
  };
  for (const auto& b : groundtruth) image_id(b.image_id), class_id(b.label);
  for (const auto& l : image_labels) image_id(l.image_id), class_id(l.label);
  const size_t num_images = image_of.size();

  // Evaluatable classes per image: verified labels and classes with boxes.
  std::vector<std::unordered_set<size_t>> evaluatable(num_images);
  struct ImageBoxes {
    std::vector<std::pair<size_t, Box>> boxes, groups;
  };
  std::vector<ImageBoxes> gt(num_images);
  std::vector<size_t> num_gt(class_names.size(), 0);
  for (const auto& b : groundtruth) {
    const size_t i = image_of.at(b.image_id), c = class_of.at(b.label);
    evaluatable[i].insert(c);
    const Box box{b.ymin, b.xmin, b.ymax, b.xmax};
    (b.is_group_of ? gt[i].groups : gt[i].boxes).emplace_back(c, box);
    ++num_gt[c];
  }
  for (const auto& l : image_labels)
    evaluatable[image_of.at(l.image_id)].insert(class_of.at(l.label));

  // Evaluatable detections grouped by image, file order.
  std::vector<std::vector<size_t>> dets_of(num_images);
  for (size_t d = 0; d < detections.size(); ++d) {
    const auto& det = detections[d];
    LARGEDET_CHECK(std::isfinite(det.score), "detection ", d, " of image ", det.image_id,
                   " has a score that is not finite");
    auto img = image_of.find(det.image_id);
    if (img == image_of.end()) continue;
    auto cls = class_of.find(det.label);
    if (cls == class_of.end() || !evaluatable[img->second].count(cls->second)) continue;
    dets_of[img->second].push_back(d);
  }

  std::vector<std::vector<std::pair<size_t, Scored>>> per_image(num_images);
  std::vector<size_t> num_dets(class_names.size(), 0);
  for (const auto& list : dets_of)
    for (size_t d : list) ++num_dets[class_of.at(detections[d].label)];
  const int threads = params.threads > 0 ? params.threads : usable_cores();
  parallel_for(num_images, threads, [&](size_t i) {
    std::vector<size_t> order = dets_of[i];
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return detections[a].score > detections[b].score; });
    std::unordered_set<size_t> classes;
    for (size_t d : order) classes.insert(class_of.at(detections[d].label));
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
      match_image_class(dets, scores, boxes, groups, params.iou_threshold, scored);
      for (const auto& s : scored) per_image[i].emplace_back(c, s);
    }
  });

  std::vector<std::vector<Scored>> per_class(class_names.size());
  for (const auto& list : per_image)
    for (const auto& [c, s] : list) per_class[c].push_back(s);
  OidEvalResult result;
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
