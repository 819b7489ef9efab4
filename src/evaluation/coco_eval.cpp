// COCOeval (pycocotools/cocoeval.py) re-implemented. Comments cite the Python it mirrors where
// the exact behaviour matters for identical numbers.
#include "largedet/evaluation/coco_eval.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <deque>
#include <numeric>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/threads.h"
#include "parallel.h"

namespace largedet::evaluation {

const std::array<const char*, 12> kStatNames = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

const char* iou_type_name(IouType type) { return type == IouType::kSegm ? "segm" : "bbox"; }

// np.linspace(start, stop, num): y = arange(num) * ((stop - start) / (num - 1)) + start, and the
// last element set to stop.
static std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(static_cast<size_t>(num));
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) y[size_t(i)] = double(i) * step + start;
  y.back() = stop;
  return y;
}

std::vector<double> CocoEvalParams::default_iou_thresholds() { return linspace(.5, 0.95, 10); }
std::vector<double> CocoEvalParams::default_recall_thresholds() { return linspace(0, 1, 101); }

namespace {

// The matching outcome of one (image, category): its detections in score order (at most
// max_dets.back()), and for each area range and IoU threshold t bit t of `tp` / `fp` (a
// detection that is neither is ignored). npig: ground truths that are not ignored.
struct ImageCategoryResult {
  int32_t category = 0;          // position in the sorted category ids
  uint32_t first_detection = 0;  // into ImageResult's arrays
  uint32_t num_detections = 0;
  std::vector<uint32_t> npig;  // per area range
};

struct ImageResult {
  std::vector<ImageCategoryResult> cells;
  std::vector<double> scores;
  std::vector<uint32_t> tp, fp;  // [detection][area]
};

struct Prepared {
  const CocoDataset& gt;
  const std::vector<Detection>& dets;
  const CocoEvalParams& params;
  std::vector<int64_t> category_ids;
  std::vector<int32_t> category_of;  // gt category index -> sorted position, -1 if none
  std::vector<size_t> image_order;   // sorted position -> gt image index
  std::vector<size_t> gt_begin, gt_items, dt_begin, dt_items;  // per sorted image, file order
};

// Groups `count` items by sorted image position, keeping file order (a counting sort).
template <typename ImagePos>
void group_by_image(size_t count, size_t num_images, ImagePos image_pos, std::vector<size_t>& begin,
                    std::vector<size_t>& items) {
  begin.assign(num_images + 1, 0);
  std::vector<int64_t> pos(count);
  for (size_t i = 0; i < count; ++i) {
    pos[i] = image_pos(i);
    if (pos[i] >= 0) ++begin[size_t(pos[i]) + 1];
  }
  for (size_t i = 0; i < num_images; ++i) begin[i + 1] += begin[i];
  items.assign(begin[num_images], 0);
  std::vector<size_t> fill(begin.begin(), begin.end() - 1);
  for (size_t i = 0; i < count; ++i) {
    if (pos[i] >= 0) items[fill[size_t(pos[i])]++] = i;
  }
}

Prepared prepare(const CocoDataset& gt, const std::vector<Detection>& dets,
                 const CocoEvalParams& params) {
  Prepared p{gt, dets, params, {}, {}, {}, {}, {}, {}, {}};
  std::vector<size_t> cats(gt.categories.size());
  std::iota(cats.begin(), cats.end(), 0);
  std::sort(cats.begin(), cats.end(),
            [&](size_t a, size_t b) { return gt.categories[a].id < gt.categories[b].id; });
  p.category_of.assign(gt.categories.size(), -1);
  for (size_t k = 0; k < cats.size(); ++k) {
    p.category_ids.push_back(gt.categories[cats[k]].id);
    p.category_of[cats[k]] = int32_t(k);
  }
  p.image_order.resize(gt.images.size());
  std::iota(p.image_order.begin(), p.image_order.end(), 0);
  std::sort(p.image_order.begin(), p.image_order.end(),
            [&](size_t a, size_t b) { return gt.images[a].id < gt.images[b].id; });
  std::vector<int64_t> rank_of(gt.images.size());
  for (size_t r = 0; r < p.image_order.size(); ++r) rank_of[p.image_order[r]] = int64_t(r);
  auto rank = [&](int64_t image_id, int64_t category_id) -> int64_t {
    const int64_t image = gt.image_index(image_id);
    const int64_t category = gt.category_index(category_id);
    if (image < 0 || category < 0) return -1;  // pycocotools: not in imgIds / catIds
    return rank_of[size_t(image)];
  };
  group_by_image(
      gt.annotations.size(), gt.images.size(),
      [&](size_t i) { return rank(gt.annotations[i].image_id, gt.annotations[i].category_id); },
      p.gt_begin, p.gt_items);
  group_by_image(
      dets.size(), gt.images.size(),
      [&](size_t i) { return rank(dets[i].image_id, dets[i].category_id); }, p.dt_begin,
      p.dt_items);
  return p;
}

// One cell's masks and their boxes, for segm IoUs: masks decoded at load (RLE results) by
// pointer, the rest made here and owned.
struct Masks {
  void add(Rle made) {
    owned.push_back(std::move(made));
    add(&owned.back());
  }
  void add(const Rle* rle) {
    rles.push_back(rle);
    boxes.push_back(rle_to_bbox(*rle));
  }
  std::vector<const Rle*> rles;
  std::vector<BoxXywh> boxes;
  std::deque<Rle> owned;  // stable addresses
};

// Ground-truth masks are decoded here, long after parsing: errors name the file and annotation.
Rle gt_mask(const CocoDataset& gt, const CocoAnnotation& ann, const CocoImage& img) {
  const auto where = [&] {
    return detail::concat(gt.source, ": annotation id ", ann.id, " of image id ", img.id);
  };
  if (ann.segmentation.empty()) {
    throw Error("annotation has no segmentation", where(),
                "segm evaluation needs masks for every object");
  }
  try {
    return segmentation_to_rle(ann.segmentation, uint32_t(img.height), uint32_t(img.width));
  } catch (const Error& e) {
    throw Error(e.message(), detail::concat(where(), ", \"segmentation\" (", e.where(), ")"),
                e.hint());
  }
}

Rle dt_mask(const Detection& det, const CocoImage& img) {
  if (det.segmentation.empty()) {
    // pycocotools' loadRes gives box results the box's polygon [x1,y1, x1,y2, x2,y2, x2,y1]:
    // rle_from_bbox's.
    LARGEDET_CHECK(det.has_bbox, "detection of image ", img.id, " has neither mask nor box");
    return rle_from_bbox(det.bbox, uint32_t(img.height), uint32_t(img.width));
  }
  return segmentation_to_rle(det.segmentation, uint32_t(img.height), uint32_t(img.width));
}

// The area a detection counts in for the area ranges: its stored one (the reader's: loadRes'
// w * h for box results, the mask's for mask results), else its box's, else its mask's.
double detection_area(const Detection& det, const Rle* mask) {
  if (!std::isnan(det.area)) return det.area;
  return det.has_bbox ? det.bbox[2] * det.bbox[3] : double(rle_area(*mask));
}

// One thread's working arrays for evaluate_cell, reused from cell to cell (a 5k-image evaluation
// has ~10^5 cells: allocating them per cell was a visible share of its time).
struct CellScratch {
  std::vector<size_t> dts, order;
  std::vector<double> ious, dt_area;
  std::vector<char> gt_ignore, gt_crowd, gt_matched;
  std::vector<double> sorted_ious;  // [d][gi]: ious in `order`
};

// computeIoU + evaluateImg (for every area range, maxDet = max_dets.back()) of one
// (image, category). `gts` and `dts` are in file order.
void evaluate_cell(const Prepared& p, const CocoImage& img, int32_t category,
                   const std::vector<size_t>& gts, const std::vector<size_t>& cell_dts,
                   CellScratch& scratch, ImageResult& out) {
  const CocoEvalParams& params = p.params;
  const size_t T = params.iou_thresholds.size(), A = params.area_ranges.size();
  // inds = np.argsort([-d['score'] for d in dt], kind='mergesort'); dt = dt[0:maxDets[-1]]
  std::vector<size_t>& dts = scratch.dts;
  dts.assign(cell_dts.begin(), cell_dts.end());
  std::stable_sort(dts.begin(), dts.end(),
                   [&](size_t a, size_t b) { return p.dets[a].score > p.dets[b].score; });
  if (dts.size() > size_t(params.max_dets.back())) dts.resize(size_t(params.max_dets.back()));
  const size_t G = gts.size(), D = dts.size();

  ImageCategoryResult cell;
  cell.category = category;
  cell.first_detection = uint32_t(out.scores.size());
  cell.num_detections = uint32_t(D);
  cell.npig.assign(A, 0);

  std::vector<double>& ious = scratch.ious;  // [d][g], g in file order
  ious.resize(D * G);
  std::vector<double>& dt_area = scratch.dt_area;
  dt_area.resize(D);
  if (params.iou_type == IouType::kBbox) {
    for (size_t d = 0; d < D; ++d) {
      const Detection& det = p.dets[dts[d]];
      // A mask result without a box: loadRes gives it its mask's box, and the mask's area.
      const bool mask_box = !det.has_bbox && det.segmentation.kind == Segmentation::Kind::kRle;
      LARGEDET_CHECK(det.has_bbox || mask_box, "detection of image ", img.id, " has no bbox");
      dt_area[d] = detection_area(det, &det.segmentation.rle);
      if (G == 0) continue;
      const BoxXywh box = det.has_bbox ? det.bbox : rle_to_bbox(det.segmentation.rle);
      for (size_t g = 0; g < G; ++g) {
        const CocoAnnotation& ann = p.gt.annotations[gts[g]];
        ious[d * G + g] = bbox_iou(box, ann.bbox, ann.iscrowd);
      }
    }
  } else {
    // Masks are made (and their boxes found) only where a ground truth needs an IoU: most
    // detections of an image are of categories it has none of.
    Masks gm, dm;
    for (size_t g = 0; g < G; ++g) gm.add(gt_mask(p.gt, p.gt.annotations[gts[g]], img));
    for (size_t d = 0; d < D; ++d) {
      const Detection& det = p.dets[dts[d]];
      const Segmentation& s = det.segmentation;
      const bool needs_mask = G > 0 || (std::isnan(det.area) && !det.has_bbox);
      if (needs_mask) {
        if (s.kind == Segmentation::Kind::kRle && s.rle.h == uint32_t(img.height) &&
            s.rle.w == uint32_t(img.width))
          dm.add(&s.rle);
        else
          dm.add(dt_mask(det, img));
      }
      dt_area[d] = detection_area(det, needs_mask ? dm.rles.back() : nullptr);
      for (size_t g = 0; g < G; ++g) {
        ious[d * G + g] = rle_iou(*dm.rles[d], dm.boxes[d], *gm.rles[g], gm.boxes[g],
                                  p.gt.annotations[gts[g]].iscrowd);
      }
    }
  }

  for (size_t d = 0; d < D; ++d) out.scores.push_back(p.dets[dts[d]].score);
  const size_t base = out.tp.size();
  out.tp.resize(base + D * A, 0);
  out.fp.resize(base + D * A, 0);

  std::vector<size_t>& order = scratch.order;
  order.resize(G);
  std::vector<char>&gt_ignore = scratch.gt_ignore, &gt_crowd = scratch.gt_crowd,
  &gt_matched = scratch.gt_matched;
  gt_ignore.resize(G);
  gt_crowd.resize(G);
  gt_matched.resize(T * G);
  std::vector<double>& sorted_ious = scratch.sorted_ious;
  sorted_ious.resize(D * G);
  for (size_t a = 0; a < A; ++a) {
    const double lo = params.area_ranges[a][0], hi = params.area_ranges[a][1];
    // g['_ignore'] = g['ignore'] (= iscrowd) or area outside the range; gt sorted ignore-last.
    for (size_t g = 0; g < G; ++g) {
      const CocoAnnotation& ann = p.gt.annotations[gts[g]];
      gt_ignore[g] = ann.iscrowd || ann.area < lo || ann.area > hi;
    }
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t x, size_t y) { return gt_ignore[x] < gt_ignore[y]; });
    size_t not_ignored = 0;
    for (size_t g = 0; g < G; ++g) not_ignored += !gt_ignore[g];
    cell.npig[a] = uint32_t(not_ignored);
    // In `order` from here: gi < not_ignored are the ones not ignored.
    for (size_t gi = 0; gi < G; ++gi) gt_crowd[gi] = p.gt.annotations[gts[order[gi]]].iscrowd;
    for (size_t d = 0; d < D; ++d) {
      for (size_t gi = 0; gi < G; ++gi) sorted_ious[d * G + gi] = ious[d * G + order[gi]];
    }
    std::fill(gt_matched.begin(), gt_matched.end(), 0);
    for (size_t t = 0; t < T; ++t) {
      char* gtm = &gt_matched[t * G];
      const double threshold = std::min(params.iou_thresholds[t], 1 - 1e-10);
      for (size_t d = 0; d < D; ++d) {
        double iou = threshold;
        int64_t m = -1;
        const double* row = &sorted_ious[d * G];
        for (size_t gi = 0; gi < G; ++gi) {
          if (gtm[gi] && !gt_crowd[gi]) continue;
          // A match among the ones not ignored is never traded for an ignored one.
          if (m > -1 && size_t(m) < not_ignored && gi >= not_ignored) break;
          if (row[gi] < iou) continue;
          iou = row[gi];
          m = int64_t(gi);
        }
        bool matched = false, ignored = false;
        if (m != -1) {
          ignored = size_t(m) >= not_ignored;
          // dtm holds the gt's id: a gt with id 0 reads as "unmatched" there, and here too.
          matched = p.gt.annotations[gts[order[size_t(m)]]].id != 0;
          gtm[size_t(m)] = 1;
        }
        // Unmatched detections outside the area range are ignored.
        if (!matched && (dt_area[d] < lo || dt_area[d] > hi)) ignored = true;
        if (!ignored) {
          uint32_t& bits = matched ? out.tp[base + d * A + a] : out.fp[base + d * A + a];
          bits |= uint32_t(1) << t;
        }
      }
    }
  }
  out.cells.push_back(std::move(cell));
}

ImageResult evaluate_image(const Prepared& p, size_t rank) {
  const CocoImage& img = p.gt.images[p.image_order[rank]];
  // This image's ground truths and detections, grouped by category, file order within.
  auto by_category = [&](const std::vector<size_t>& begin, const std::vector<size_t>& items,
                         auto category_id_of) {
    std::vector<std::pair<int32_t, size_t>> list;
    for (size_t i = begin[rank]; i < begin[rank + 1]; ++i) {
      const int64_t c = p.gt.category_index(category_id_of(items[i]));
      list.emplace_back(p.category_of[size_t(c)], items[i]);
    }
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    return list;
  };
  auto gts = by_category(p.gt_begin, p.gt_items,
                         [&](size_t i) { return p.gt.annotations[i].category_id; });
  auto dts = by_category(p.dt_begin, p.dt_items, [&](size_t i) { return p.dets[i].category_id; });
  ImageResult out;
  thread_local CellScratch scratch;
  size_t gi = 0, di = 0;
  std::vector<size_t> cell_gts, cell_dts;
  while (gi < gts.size() || di < dts.size()) {
    const int32_t k = std::min(gi < gts.size() ? gts[gi].first : INT32_MAX,
                               di < dts.size() ? dts[di].first : INT32_MAX);
    cell_gts.clear();
    cell_dts.clear();
    for (; gi < gts.size() && gts[gi].first == k; ++gi) cell_gts.push_back(gts[gi].second);
    for (; di < dts.size() && dts[di].first == k; ++di) cell_dts.push_back(dts[di].second);
    evaluate_cell(p, img, k, cell_gts, cell_dts, scratch, out);
  }
  return out;
}

struct Cell {
  const ImageResult* image;
  const ImageCategoryResult* cell;
};

// accumulate() for one category: fills precision[:, :, k, :, :] and recall[:, k, :, :].
void accumulate_category(const CocoEvalParams& params, size_t k, size_t K,
                         const std::vector<Cell>& cells, CocoEvalResult& result) {
  const size_t T = params.iou_thresholds.size(), R = params.recall_thresholds.size();
  const size_t A = params.area_ranges.size(), M = params.max_dets.size();
  if (cells.empty()) return;  // E is empty: stays -1
  // Every detection of the category in pycocotools' order: np.concatenate over images in id
  // order, then a stable sort by descending score.
  std::vector<double> scores;
  std::vector<uint32_t> ranks;  // position in its image's score order (for maxDets)
  std::vector<const uint32_t*> tp_of, fp_of;
  for (const Cell& c : cells) {
    for (uint32_t j = 0; j < c.cell->num_detections; ++j) {
      const size_t d = c.cell->first_detection + j;
      scores.push_back(c.image->scores[d]);
      ranks.push_back(j);
      tp_of.push_back(&c.image->tp[d * A]);
      fp_of.push_back(&c.image->fp[d * A]);
    }
  }
  std::vector<uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t x, uint32_t y) { return scores[x] > scores[y]; });
  const size_t n = order.size();
  std::vector<uint32_t> sorted_rank(n), sorted_tp(n * A), sorted_fp(n * A);
  for (size_t i = 0; i < n; ++i) {
    sorted_rank[i] = ranks[order[i]];
    std::copy_n(tp_of[order[i]], A, &sorted_tp[i * A]);
    std::copy_n(fp_of[order[i]], A, &sorted_fp[i * A]);
  }
  // Per area, per maxDets: the (tp, fp) bit masks of the detections that count there, contiguous
  // and in score order. Ignored detections (neither bit at any threshold) and those past maxDets
  // in their image change neither tp nor fp: leaving them out changes no sampled value (their
  // rc/pr repeat the previous position's), and one pass per threshold then reads only these.
  std::vector<uint32_t> tp_bits, fp_bits;
  std::vector<double> pr;  // at each true positive, in score order
  for (size_t a = 0; a < A; ++a) {
    uint64_t npig = 0;
    for (const Cell& c : cells) npig += c.cell->npig[a];
    if (npig == 0) continue;
    for (size_t m = 0; m < M; ++m) {
      const uint32_t max_det = uint32_t(params.max_dets[m]);
      tp_bits.clear();
      fp_bits.clear();
      for (size_t i = 0; i < n; ++i) {
        const uint32_t tpb = sorted_tp[i * A + a], fpb = sorted_fp[i * A + a];
        if (sorted_rank[i] >= max_det || (tpb | fpb) == 0) continue;
        tp_bits.push_back(tpb);
        fp_bits.push_back(fpb);
      }
      for (size_t t = 0; t < T; ++t) {
        const uint32_t bit = uint32_t(1) << t;
        // pycocotools computes rc and pr at every detection. Recall changes only at a true
        // positive, and precision rises only there (a false positive lowers it): the envelope
        // (the best precision at or after a position) and the first position reaching each
        // recall threshold are found among the true positives alone, with the same doubles.
        // Counts are integers (exact, as pycocotools' float cumsums are below 2^53).
        pr.clear();
        uint64_t tp = 0, fp = 0;
        for (size_t i = 0; i < tp_bits.size(); ++i) {
          fp += (fp_bits[i] & bit) != 0;
          if (tp_bits[i] & bit) {
            ++tp;
            pr.push_back(double(tp) / (double(fp) + double(tp) + DBL_EPSILON));  // np.spacing(1)
          }
        }
        result.recall[((t * K + k) * A + a) * M + m] = double(tp) / double(npig);
        const size_t ntp = pr.size();
        for (size_t i = ntp; i-- > 1;) {
          if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
        }
        // q[ri] = pr[np.searchsorted(rc, recThrs, side='left')], 0 past the end; rc at the j-th
        // true positive is (j + 1) / npig.
        size_t j = 0;
        for (size_t r = 0; r < R; ++r) {
          while (j < ntp && double(j + 1) / double(npig) < params.recall_thresholds[r]) ++j;
          result.precision[(((t * R + r) * K + k) * A + a) * M + m] = j < ntp ? pr[j] : 0;
        }
      }
    }
  }
}

// numpy's pairwise summation of doubles (pairwise_sum_DOUBLE: blocks of 128 summed with 8
// accumulators, halves above that). The summary prints 3 decimals, and a mean that lands on a
// ...5 boundary rounds like pycocotools' only if it is summed in the same order the same way.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (size_t j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

// _summarize(): np.mean(s[s > -1]), or -1 when there are none. The entries are gathered in the C
// order of pycocotools' indexed array: [t, r, k] for precision, [t, k] for recall.
double summarize(const CocoEvalResult& r, bool ap, double iou_threshold, const std::string& area,
                 int max_dets, int64_t only_category = -1) {
  const CocoEvalParams& p = r.params;
  const size_t T = p.iou_thresholds.size(), R = p.recall_thresholds.size();
  const size_t K = r.category_ids.size(), A = p.area_ranges.size(), M = p.max_dets.size();
  std::vector<double> values;
  for (size_t t = 0; t < T; ++t) {
    if (!std::isnan(iou_threshold) && p.iou_thresholds[t] != iou_threshold) continue;
    for (size_t ri = 0; ri < (ap ? R : 1); ++ri) {
      for (size_t k = 0; k < K; ++k) {
        if (only_category >= 0 && size_t(only_category) != k) continue;
        for (size_t a = 0; a < A; ++a) {
          if (p.area_labels[a] != area) continue;
          for (size_t m = 0; m < M; ++m) {
            if (p.max_dets[m] != max_dets) continue;
            const double v = ap ? r.precision_at(t, ri, k, a, m) : r.recall_at(t, k, a, m);
            if (v > -1) values.push_back(v);
          }
        }
      }
    }
  }
  if (values.empty()) return -1;
  return (0.0 + pairwise_sum(values.data(), values.size())) / double(values.size());
}

}  // namespace

double CocoEvalResult::precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const {
  const size_t R = params.recall_thresholds.size(), K = category_ids.size();
  const size_t A = params.area_ranges.size(), M = params.max_dets.size();
  return precision[(((t * R + r) * K + k) * A + a) * M + m];
}

double CocoEvalResult::recall_at(size_t t, size_t k, size_t a, size_t m) const {
  const size_t K = category_ids.size(), A = params.area_ranges.size(), M = params.max_dets.size();
  return recall[((t * K + k) * A + a) * M + m];
}

std::string CocoEvalResult::summary() const {
  const int m0 = params.max_dets.front(), m2 = params.max_dets.back();
  const int m1 = params.max_dets.size() > 2 ? params.max_dets[1] : m2;
  const double all = std::nan("");
  struct Line {
    bool ap;
    double iou;
    const char* area;
    int max_dets;
  };
  const Line lines[12] = {
      {true, all, "all", m2},    {true, .5, "all", m2},      {true, .75, "all", m2},
      {true, all, "small", m2},  {true, all, "medium", m2},  {true, all, "large", m2},
      {false, all, "all", m0},   {false, all, "all", m1},    {false, all, "all", m2},
      {false, all, "small", m2}, {false, all, "medium", m2}, {false, all, "large", m2}};
  std::string out;
  char buffer[160];
  for (int i = 0; i < 12; ++i) {
    const Line& l = lines[i];
    char iou[32];
    if (std::isnan(l.iou))
      std::snprintf(iou, sizeof iou, "%0.2f:%0.2f", params.iou_thresholds.front(),
                    params.iou_thresholds.back());
    else
      std::snprintf(iou, sizeof iou, "%0.2f", l.iou);
    // ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'
    std::snprintf(buffer, sizeof buffer,
                  " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n",
                  l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", iou,
                  l.area, l.max_dets, stats[size_t(i)]);
    out += buffer;
  }
  return out;
}

std::string CocoEvalResult::category_table() const {
  std::string out = "category_id  name                      AP     AP50   AP75\n";
  char buffer[160];
  auto pct = [](double v) { return v < 0 ? std::nan("") : 100 * v; };
  for (const auto& c : per_category) {
    std::snprintf(buffer, sizeof buffer, "%11lld  %-22.22s %6.2f %6.2f %6.2f\n", (long long)c.id,
                  c.name.c_str(), pct(c.ap), pct(c.ap50), pct(c.ap75));
    out += buffer;
  }
  return out;
}

CocoEvalResult evaluate_coco(const CocoDataset& gt, const std::vector<Detection>& dets,
                             const CocoEvalParams& params) {
  LARGEDET_CHECK(!params.iou_thresholds.empty() && params.iou_thresholds.size() <= 32,
                 "between 1 and 32 IoU thresholds are supported");
  LARGEDET_CHECK(
      !params.max_dets.empty() && std::is_sorted(params.max_dets.begin(), params.max_dets.end()),
      "max_dets must be ascending");
  LARGEDET_CHECK(params.area_labels.size() == params.area_ranges.size(),
                 "one area label per area range");
  const int threads = params.threads > 0 ? params.threads : usable_cores();
  Prepared p = prepare(gt, dets, params);
  const size_t I = p.image_order.size(), K = p.category_ids.size();
  // pycocotools' accumulate holds precision as one [T, R, K, A, M] array, as this does: a ground
  // truth with a million categories would ask for ~100 GB and end in bad_alloc.
  constexpr double kMaxTableBytes = 4.0 * (uint64_t(1) << 30);
  const double table_bytes = 8.0 * double(params.iou_thresholds.size()) *
                             double(params.recall_thresholds.size()) * double(K) *
                             double(params.area_ranges.size()) * double(params.max_dets.size());
  if (table_bytes > kMaxTableBytes) {
    throw Error(detail::concat(
                    "scoring ", K, " categories needs a ", std::lround(table_bytes / 1e9),
                    " GB precision table (", params.iou_thresholds.size(), " IoU thresholds x ",
                    params.recall_thresholds.size(), " recall thresholds x ", K, " categories x ",
                    params.area_ranges.size(), " areas x ", params.max_dets.size(),
                    " maxDets, as pycocotools' accumulate); at most 4 GiB is allowed"),
                gt.source,
                "score fewer categories at once: a ground truth file with only the categories you "
                "evaluate (COCO has 80, LVIS 1,203)");
  }

  std::vector<ImageResult> images(I);
  parallel_for(I, threads, [&](size_t r) { images[r] = evaluate_image(p, r); });

  std::vector<std::vector<Cell>> by_category(K);
  for (const ImageResult& image : images) {
    for (const ImageCategoryResult& cell : image.cells) {
      by_category[size_t(cell.category)].push_back({&image, &cell});
    }
  }
  CocoEvalResult result;
  result.iou_type = params.iou_type;
  result.params = params;
  result.category_ids = p.category_ids;
  const size_t T = params.iou_thresholds.size(), R = params.recall_thresholds.size();
  const size_t A = params.area_ranges.size(), M = params.max_dets.size();
  result.precision.assign(T * R * K * A * M, -1);
  result.recall.assign(T * K * A * M, -1);
  parallel_for(K, threads,
               [&](size_t k) { accumulate_category(params, k, K, by_category[k], result); });

  const int m0 = params.max_dets.front(), m2 = params.max_dets.back();
  const int m1 = params.max_dets.size() > 2 ? params.max_dets[1] : m2;
  const double all = std::nan("");
  result.stats = {
      summarize(result, true, all, "all", m2),     summarize(result, true, .5, "all", m2),
      summarize(result, true, .75, "all", m2),     summarize(result, true, all, "small", m2),
      summarize(result, true, all, "medium", m2),  summarize(result, true, all, "large", m2),
      summarize(result, false, all, "all", m0),    summarize(result, false, all, "all", m1),
      summarize(result, false, all, "all", m2),    summarize(result, false, all, "small", m2),
      summarize(result, false, all, "medium", m2), summarize(result, false, all, "large", m2)};
  for (size_t k = 0; k < K; ++k) {
    CategoryResult c;
    c.id = p.category_ids[k];
    c.name = gt.categories[size_t(gt.category_index(c.id))].name;
    c.ap = summarize(result, true, all, "all", m2, int64_t(k));
    c.ap50 = summarize(result, true, .5, "all", m2, int64_t(k));
    c.ap75 = summarize(result, true, .75, "all", m2, int64_t(k));
    result.per_category.push_back(std::move(c));
  }
  return result;
}

}  // namespace largedet::evaluation
