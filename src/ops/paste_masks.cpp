// paste_masks_in_image, torchvision's paste: a CPU kernel that touches only the pixels inside each
// expanded box, and for other devices an ATen composition with no host reads (each mask resized by
// two batched products with its bilinear interpolation matrices).
#include "largedet/ops/paste_masks.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/tensor/parallel.h"

namespace largedet::ops {
namespace {

constexpr int64_t kPadding = 1;

// torchvision's expand_boxes and the int64 cast that follows it: each box grown about its centre
// by (M + 2) / M for the one-pixel padding (M the masks' width), truncated toward zero. [N, 4].
at::Tensor expanded_integer_boxes(const at::Tensor& boxes, int64_t mask_width) {
  const double scale = static_cast<double>(mask_width + 2 * kPadding) / mask_width;
  auto w_half = (boxes.select(1, 2) - boxes.select(1, 0)) * 0.5;
  auto h_half = (boxes.select(1, 3) - boxes.select(1, 1)) * 0.5;
  auto x_c = (boxes.select(1, 2) + boxes.select(1, 0)) * 0.5;
  auto y_c = (boxes.select(1, 3) + boxes.select(1, 1)) * 0.5;
  w_half = w_half * scale;
  h_half = h_half * scale;
  return at::stack({x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half}, 1).to(at::kLong);
}

// upsample_bilinear2d's source taps (align_corners=false) for output index `i` of `out_size`
// read from `in_size` cells, with ATen's arithmetic: src = max(in / out * (i + 0.5) - 0.5, 0).
struct Tap {
  int64_t lo, hi;
  float w_lo, w_hi;
};

Tap source_tap(int64_t i, int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float src = std::max(scale * (static_cast<float>(i) + 0.5f) - 0.5f, 0.0f);
  const int64_t lo = std::min(static_cast<int64_t>(std::floor(src)), in_size - 1);
  const float w_hi = std::min(std::max(src - static_cast<float>(lo), 0.0f), 1.0f);
  return {lo, lo + (lo < in_size - 1 ? 1 : 0), 1.0f - w_hi, w_hi};
}

template <typename Out>
void paste_cpu(const at::Tensor& masks, const at::Tensor& integer_boxes, int64_t height,
               int64_t width, float threshold, at::Tensor& out) {
  const int64_t mh = masks.size(1), mw = masks.size(2);
  const int64_t ph = mh + 2 * kPadding, pw = mw + 2 * kPadding;
  const float* m = masks.data_ptr<float>();
  const int64_t* b = integer_boxes.data_ptr<int64_t>();
  Out* dst = out.data_ptr<Out>();
  at::parallel_for(0, masks.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<Tap> xs, ys;
    for (int64_t n = begin; n < end; ++n) {
      const int64_t x0b = b[4 * n], y0b = b[4 * n + 1], x1b = b[4 * n + 2], y1b = b[4 * n + 3];
      const int64_t w = std::max<int64_t>(x1b - x0b + 1, 1),
                    h = std::max<int64_t>(y1b - y0b + 1, 1);
      const int64_t xb = std::max<int64_t>(x0b, 0), xe = std::min(x1b + 1, width);
      const int64_t yb = std::max<int64_t>(y0b, 0), ye = std::min(y1b + 1, height);
      if (xe <= xb || ye <= yb) continue;
      xs.clear(), ys.clear();
      for (int64_t x = xb; x < xe; ++x) xs.push_back(source_tap(x - x0b, pw, w));
      for (int64_t y = yb; y < ye; ++y) ys.push_back(source_tap(y - y0b, ph, h));
      const float* mask = m + n * mh * mw;
      // The padded mask: a zero border around the M x M' cells.
      auto cell = [&](int64_t r, int64_t c) {
        r -= kPadding, c -= kPadding;
        return r < 0 || r >= mh || c < 0 || c >= mw ? 0.0f : mask[r * mw + c];
      };
      Out* plane = dst + n * height * width;
      for (int64_t y = yb; y < ye; ++y) {
        const Tap& ty = ys[y - yb];
        Out* row = plane + y * width;
        for (int64_t x = xb; x < xe; ++x) {
          const Tap& tx = xs[x - xb];
          // ATen's order: the rows' horizontal interpolations, weighted by the vertical taps.
          const float top = cell(ty.lo, tx.lo) * tx.w_lo + cell(ty.lo, tx.hi) * tx.w_hi;
          const float bottom = cell(ty.hi, tx.lo) * tx.w_lo + cell(ty.hi, tx.hi) * tx.w_hi;
          const float v = top * ty.w_lo + bottom * ty.w_hi;
          if constexpr (std::is_same_v<Out, bool>) {
            row[x] = v >= threshold;
          } else {
            row[x] = v;
          }
        }
      }
    }
  });
}

// [N, size, in_size]: row p holds the two taps of image pixel p of each expanded box (from
// begin[n] to last[n], both included), zero for pixels outside the box. An inverted box pastes
// nothing, although torchvision resizes its mask to one pixel.
at::Tensor interpolation_matrix(const at::Tensor& begin, const at::Tensor& last, int64_t size,
                                int64_t in_size) {
  auto opts = begin.options();
  auto local = at::arange(size, opts).unsqueeze(0) - begin.unsqueeze(1);  // [N, size]
  auto length = last - begin + 1;
  auto inside = local.ge(0).logical_and_(local.lt(length.unsqueeze(1))).to(at::kFloat);
  auto extent = length.clamp_min(1);
  auto scale = at::scalar_tensor(static_cast<double>(in_size), opts.dtype(at::kFloat)) /
               extent.to(at::kFloat).unsqueeze(1);
  auto src = (scale * (local.to(at::kFloat) + 0.5) - 0.5).clamp_min(0);
  auto lo = src.floor().to(at::kLong).clamp_max(in_size - 1);
  auto w_hi = (src - lo.to(at::kFloat)).clamp(0, 1);
  auto hi = lo + lo.lt(in_size - 1).to(at::kLong);
  auto matrix = at::zeros({begin.size(0), size, in_size}, opts.dtype(at::kFloat));
  matrix.scatter_add_(2, lo.clamp_min(0).unsqueeze(2), ((1 - w_hi) * inside).unsqueeze(2));
  matrix.scatter_add_(2, hi.clamp_min(0).unsqueeze(2), (w_hi * inside).unsqueeze(2));
  return matrix;
}

}  // namespace

namespace detail {

at::Tensor paste_masks_in_image_aten(const at::Tensor& masks, const at::Tensor& boxes,
                                     int64_t height, int64_t width, double threshold) {
  const int64_t n = masks.size(0);
  if (n == 0 || height == 0 || width == 0) {
    auto opts = masks.options();
    return at::zeros({n, height, width}, threshold >= 0 ? opts.dtype(at::kBool) : opts);
  }
  auto b = expanded_integer_boxes(boxes, masks.size(2));
  const int64_t ph = masks.size(1) + 2 * kPadding, pw = masks.size(2) + 2 * kPadding;
  auto padded = at::constant_pad_nd(masks, {kPadding, kPadding, kPadding, kPadding}, 0);
  auto rows = interpolation_matrix(b.select(1, 1), b.select(1, 3), height, ph);  // [N, H, ph]
  auto cols = interpolation_matrix(b.select(1, 0), b.select(1, 2), width, pw);   // [N, W, pw]
  auto probs = at::bmm(rows, at::bmm(padded, cols.transpose(1, 2)));
  return threshold >= 0 ? probs.ge(threshold) : probs;
}

}  // namespace detail

at::Tensor paste_masks_in_image(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                                int64_t width, double threshold) {
  LARGEDET_CHECK(masks.dim() == 3 || (masks.dim() == 4 && masks.size(1) == 1),
                 "paste_masks_in_image: expected masks [N, M, M] or [N, 1, M, M], got ",
                 masks.sizes());
  auto m = masks.dim() == 4 ? masks.select(1, 0) : masks;
  LARGEDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && boxes.size(0) == m.size(0),
                 "paste_masks_in_image: expected boxes [", m.size(0), ", 4], got ", boxes.sizes());
  LARGEDET_CHECK(height >= 0 && width >= 0, "paste_masks_in_image: image size ", height, "x",
                 width);
  LARGEDET_CHECK(boxes.device() == m.device(), "paste_masks_in_image: masks on ", m.device(),
                 " but boxes on ", boxes.device());
  LARGEDET_CHECK(m.size(1) > 0 && m.size(2) > 0, "paste_masks_in_image: empty masks ", m.sizes());
  m = m.to(at::kFloat).contiguous();
  auto b = boxes.to(at::kFloat).contiguous();
  if (!m.is_cpu()) return detail::paste_masks_in_image_aten(m, b, height, width, threshold);
  auto out = at::zeros({m.size(0), height, width},
                       m.options().dtype(threshold >= 0 ? at::kBool : at::kFloat));
  if (out.numel() == 0) return out;
  auto integer_boxes = expanded_integer_boxes(b, m.size(2)).contiguous();
  if (threshold >= 0) {
    paste_cpu<bool>(m, integer_boxes, height, width, static_cast<float>(threshold), out);
  } else {
    paste_cpu<float>(m, integer_boxes, height, width, 0.0f, out);
  }
  return out;
}

}  // namespace largedet::ops
