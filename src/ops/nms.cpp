#include "largedet/ops/nms.h"

#include <algorithm>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"
#include "largedet/tensor/parallel.h"
#ifdef LARGEDET_WITH_CUDA
#include "cuda/cuda_ops.h"
#endif

namespace largedet::ops {
namespace {

// Greedy NMS over n boxes visited in `order` (indices into boxes [., 4] and classes), copied in
// that order into structure-of-arrays buffers, so that the inner loop streams contiguous memory
// and has no branch (the compiler vectorises it). Surviving candidates are compacted now and then
// so that suppressed boxes stop costing time. The IoU is computed with exactly torchvision's float
// operations, so the kept set is the same. Appends the kept indices in visiting order to `keep`,
// at most max_keep of them.
template <typename T>
void greedy_nms(const int64_t* order, int64_t n, const T* b, const int64_t* classes,
                double iou_threshold, int64_t max_keep, std::vector<int64_t>& keep) {
  // One allocation: x1, y1, x2, y2, area as T; then flags, original index, class.
  std::vector<T> coords(static_cast<size_t>(5 * n));
  T* x1 = coords.data();
  T* y1 = x1 + n;
  T* x2 = y1 + n;
  T* y2 = x2 + n;
  T* area = y2 + n;
  std::vector<int64_t> index(order, order + n);
  const bool by_class = classes != nullptr;
  std::vector<int64_t> cls(by_class ? n : 0);
  std::vector<uint8_t> suppressed(static_cast<size_t>(n), 0);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t o = order[k];
    x1[k] = b[4 * o], y1[k] = b[4 * o + 1], x2[k] = b[4 * o + 2], y2[k] = b[4 * o + 3];
    area[k] = (x2[k] - x1[k]) * (y2[k] - y1[k]);
    if (by_class) cls[k] = classes[o];
  }

  const T threshold = static_cast<T>(iou_threshold);
  const size_t first = keep.size();
  int64_t end = n;      // candidates live in [0, end)
  int64_t dropped = 0;  // suppressed entries in the candidate range since the last compaction
  for (int64_t i = 0; i < end; ++i) {
    if (suppressed[i]) continue;
    keep.push_back(index[i]);
    if (static_cast<int64_t>(keep.size() - first) == max_keep) return;
    const T ix1 = x1[i], iy1 = y1[i], ix2 = x2[i], iy2 = y2[i], iarea = area[i];
    int64_t newly = 0;
    if (by_class) {
      const int64_t c = cls[i];
      for (int64_t j = i + 1; j < end; ++j) {
        const T w = std::max(T(0), std::min(ix2, x2[j]) - std::max(ix1, x1[j]));
        const T h = std::max(T(0), std::min(iy2, y2[j]) - std::max(iy1, y1[j]));
        const T inter = w * h;
        const T ovr = inter / (iarea + area[j] - inter);
        const uint8_t s = (ovr > threshold) & (cls[j] == c) & !suppressed[j];
        suppressed[j] |= s;
        newly += s;
      }
    } else {
      for (int64_t j = i + 1; j < end; ++j) {
        const T w = std::max(T(0), std::min(ix2, x2[j]) - std::max(ix1, x1[j]));
        const T h = std::max(T(0), std::min(iy2, y2[j]) - std::max(iy1, y1[j]));
        const T inter = w * h;
        const T ovr = inter / (iarea + area[j] - inter);
        const uint8_t s = (ovr > threshold) & !suppressed[j];
        suppressed[j] |= s;
        newly += s;
      }
    }
    dropped += newly;
    // Compact [i + 1, end) once a quarter of it is suppressed: order is kept, so the result is
    // unchanged, and the cost is amortised over the scans it saves.
    if (dropped * 4 > end - i && end - i > 64) {
      int64_t w = i + 1;
      for (int64_t j = i + 1; j < end; ++j) {
        if (suppressed[j]) continue;
        x1[w] = x1[j], y1[w] = y1[j], x2[w] = x2[j], y2[w] = y2[j], area[w] = area[j];
        index[w] = index[j];
        if (by_class) cls[w] = cls[j];
        suppressed[w] = 0;
        ++w;
      }
      end = w;
      dropped = 0;
    }
  }
}

template <typename T>
at::Tensor nms_cpu_kernel(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                          double iou_threshold) {
  const int64_t n = boxes.size(0);
  auto order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  std::vector<int64_t> keep;
  keep.reserve(static_cast<size_t>(n));
  greedy_nms<T>(order.data_ptr<int64_t>(), n, boxes.data_ptr<T>(),
                idxs.defined() ? idxs.data_ptr<int64_t>() : nullptr, iou_threshold, n, keep);
  auto out = at::empty({static_cast<int64_t>(keep.size())}, at::kLong);
  std::copy(keep.begin(), keep.end(), out.data_ptr<int64_t>());
  return out;
}

// Each image's row on its own thread, with no ATen op inside (their count must not grow with
// the batch): the valid boxes ordered by descending score, ties in index order (a stable sort,
// as the single-image path), then greedy_nms.
template <typename T, typename S>
void segmented_nms_cpu_kernel(const at::Tensor& boxes, const at::Tensor& scores,
                              const at::Tensor& idxs, const at::Tensor& valid, double iou_threshold,
                              at::Tensor& keep, at::Tensor& kept) {
  const int64_t rows = boxes.size(0), n = boxes.size(1), max_keep = keep.size(1);
  const T* b = boxes.data_ptr<T>();
  const S* s = scores.data_ptr<S>();
  const int64_t* c = idxs.defined() ? idxs.data_ptr<int64_t>() : nullptr;
  const bool* v = valid.data_ptr<bool>();
  int64_t* out = keep.data_ptr<int64_t>();
  bool* out_kept = kept.data_ptr<bool>();
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> order, row_keep;
    for (int64_t r = begin; r < end; ++r) {
      const S* rs = s + r * n;
      order.clear();
      for (int64_t k = 0; k < n; ++k)
        if (v[r * n + k]) order.push_back(k);
      std::stable_sort(order.begin(), order.end(),
                       [rs](int64_t a, int64_t z) { return rs[a] > rs[z]; });
      row_keep.clear();
      greedy_nms<T>(order.data(), static_cast<int64_t>(order.size()), b + r * n * 4,
                    c ? c + r * n : nullptr, iou_threshold, max_keep, row_keep);
      std::copy(row_keep.begin(), row_keep.end(), out + r * max_keep);
      std::fill(out_kept + r * max_keep, out_kept + r * max_keep + row_keep.size(), true);
    }
  });
}

at::Tensor nms_impl(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                    double iou_threshold, const char* name) {
  LARGEDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, name,
                 ": expected boxes of shape [N, 4], got ", boxes.sizes());
  LARGEDET_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0), name,
                 ": expected scores of shape [", boxes.size(0), "], got ", scores.sizes());
  LARGEDET_CHECK(scores.device() == boxes.device(), name, ": boxes on ", boxes.device(),
                 " but scores on ", scores.device());
  at::Tensor cls;
  if (idxs.defined()) {
    LARGEDET_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes.size(0), name,
                   ": expected idxs of shape [", boxes.size(0), "], got ", idxs.sizes());
    LARGEDET_CHECK(idxs.device() == boxes.device(), name, ": boxes on ", boxes.device(),
                   " but idxs on ", idxs.device());
    cls = idxs.to(at::kLong).contiguous();
  }
  if (boxes.size(0) == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  // How many boxes survive is known on the host only after the kernel (on CUDA, a copy back).
  note_host_sync(name);
  // Scores decide the order only (sorted in their own dtype); boxes of a reduced precision are
  // compared in float.
  auto b = boxes;
  if (b.scalar_type() != at::kDouble) b = b.to(at::kFloat);
  auto s = scores.contiguous();
  b = b.contiguous();
  if (b.is_cuda()) {
#ifdef LARGEDET_WITH_CUDA
    return cuda::nms(b, s, cls, iou_threshold);
#else
    LARGEDET_CHECK(false, name, ": CUDA tensors, but LargeDet was built without CUDA kernels");
#endif
  }
  LARGEDET_CHECK(b.is_cpu(), name, ": unsupported device ", b.device());
  return AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "largedet_nms", [&] {
    return nms_cpu_kernel<scalar_t>(b, s, cls, iou_threshold);
  });
}

}  // namespace

at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold) {
  return nms_impl(boxes, scores, at::Tensor(), iou_threshold, "nms");
}

at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                       double iou_threshold) {
  LARGEDET_CHECK(idxs.defined(), "batched_nms: idxs is undefined");
  return nms_impl(boxes, scores, idxs, iou_threshold, "batched_nms");
}

std::pair<at::Tensor, at::Tensor> segmented_nms(const at::Tensor& boxes, const at::Tensor& scores,
                                                const at::Tensor& idxs, const at::Tensor& valid,
                                                double iou_threshold, int64_t max_keep) {
  LARGEDET_CHECK(boxes.dim() == 3 && boxes.size(2) == 4,
                 "segmented_nms: expected boxes of shape [B, N, 4], got ", boxes.sizes());
  const auto rows = boxes.size(0), n = boxes.size(1);
  for (const auto* t : {&scores, &valid, &idxs}) {
    if (t == &idxs && !idxs.defined()) continue;
    LARGEDET_CHECK(t->dim() == 2 && t->size(0) == rows && t->size(1) == n,
                   "segmented_nms: expected scores, valid and idxs of shape [", rows, ", ", n,
                   "], got ", t->sizes());
    LARGEDET_CHECK(t->device() == boxes.device(), "segmented_nms: boxes on ", boxes.device(),
                   " but another input on ", t->device());
  }
  LARGEDET_CHECK(valid.scalar_type() == at::kBool, "segmented_nms: valid must be bool, got ",
                 valid.scalar_type());
  LARGEDET_CHECK(max_keep >= 0, "segmented_nms: max_keep ", max_keep, " < 0");
  auto keep = at::zeros({rows, max_keep}, boxes.options().dtype(at::kLong));
  auto kept = at::zeros({rows, max_keep}, boxes.options().dtype(at::kBool));
  if (rows == 0 || n == 0 || max_keep == 0) return {keep, kept};
  // As nms(): scores decide the order only; boxes of a reduced precision are compared in float.
  // Half and bfloat16 scores order (and tie) exactly as their float values.
  auto b = (boxes.scalar_type() == at::kDouble ? boxes : boxes.to(at::kFloat)).contiguous();
  auto s = (scores.scalar_type() == at::kDouble ? scores : scores.to(at::kFloat)).contiguous();
  auto c = idxs.defined() ? idxs.to(at::kLong).contiguous() : at::Tensor();
  auto v = valid.contiguous();
  if (b.is_cuda()) {
#ifdef LARGEDET_WITH_CUDA
    cuda::segmented_nms(b, s, c, v, iou_threshold, keep, kept);
    return {keep, kept};
#else
    LARGEDET_CHECK(false,
                   "segmented_nms: CUDA tensors, but LargeDet was built without CUDA kernels");
#endif
  }
  LARGEDET_CHECK(b.is_cpu(), "segmented_nms: unsupported device ", b.device());
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "largedet_segmented_nms", [&] {
    if (s.scalar_type() == at::kDouble)
      segmented_nms_cpu_kernel<scalar_t, double>(b, s, c, v, iou_threshold, keep, kept);
    else
      segmented_nms_cpu_kernel<scalar_t, float>(b, s, c, v, iou_threshold, keep, kept);
  });
  return {keep, kept};
}

}  // namespace largedet::ops
