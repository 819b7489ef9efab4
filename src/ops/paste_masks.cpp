// paste_masks_in_image: a CPU kernel that touches only the pixels inside each box, and an ATen
// (grid_sample) implementation for CUDA tensors.
#include "largedet/ops/paste_masks.h"

#include <cmath>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/core/parallel.h"

namespace largedet::ops {
namespace {

// Per image column (or row): the two mask cells sampled and their weights (0 outside the mask),
// computed with grid_sample's arithmetic: g = (p + 0.5 - lo) / (hi - lo) * 2 - 1,
// i = ((g + 1) * size - 1) / 2.
struct Tap {
  int lo, hi;
  float w_lo, w_hi;
};

void make_taps(float lo, float hi, int64_t size, int64_t begin, int64_t end,
               std::vector<Tap>& taps) {
  taps.resize(static_cast<size_t>(std::max<int64_t>(end - begin, 0)));
  for (int64_t p = begin; p < end; ++p) {
    const float g = (static_cast<float>(p) + 0.5f - lo) / (hi - lo) * 2.0f - 1.0f;
    const float i = ((g + 1.0f) * static_cast<float>(size) - 1.0f) / 2.0f;
    const float i0 = std::floor(i);
    const int c0 = static_cast<int>(i0);
    Tap& t = taps[p - begin];
    t.w_hi = i - i0;
    t.w_lo = 1.0f - t.w_hi;
    t.lo = c0, t.hi = c0 + 1;
    if (c0 < 0 || c0 >= size) t.w_lo = 0, t.lo = 0;  // zero padding
    if (c0 + 1 < 0 || c0 + 1 >= size) t.w_hi = 0, t.hi = 0;
  }
}

// Pixel range [begin, end) whose centres p + 0.5 lie in [lo, hi], clipped to [0, size).
std::pair<int64_t, int64_t> pixel_range(float lo, float hi, int64_t size) {
  if (!(hi > lo)) return {0, 0};  // degenerate or NaN box: nothing to paste
  const auto begin = static_cast<int64_t>(std::max(0.0f, std::ceil(lo - 0.5f)));
  const auto end =
      static_cast<int64_t>(std::min(static_cast<float>(size), std::floor(hi - 0.5f) + 1.0f));
  return {begin, std::max(begin, end)};
}

template <typename Out>
void paste_cpu(const at::Tensor& masks, const at::Tensor& boxes, int64_t height, int64_t width,
               float threshold, at::Tensor& out) {
  const int64_t mh = masks.size(1), mw = masks.size(2);
  const float* m = masks.data_ptr<float>();
  const float* b = boxes.data_ptr<float>();
  Out* dst = out.data_ptr<Out>();
  at::parallel_for(0, masks.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<Tap> xs, ys;
    for (int64_t n = begin; n < end; ++n) {
      const float x0 = b[4 * n], y0 = b[4 * n + 1], x1 = b[4 * n + 2], y1 = b[4 * n + 3];
      const auto [xb, xe] = pixel_range(x0, x1, width);
      const auto [yb, ye] = pixel_range(y0, y1, height);
      if (xe <= xb || ye <= yb) continue;
      make_taps(x0, x1, mw, xb, xe, xs);
      make_taps(y0, y1, mh, yb, ye, ys);
      const float* mask = m + n * mh * mw;
      Out* plane = dst + n * height * width;
      for (int64_t y = yb; y < ye; ++y) {
        const Tap& ty = ys[y - yb];
        const float* row_lo = mask + ty.lo * mw;
        const float* row_hi = mask + ty.hi * mw;
        Out* row = plane + y * width;
        for (int64_t x = xb; x < xe; ++x) {
          const Tap& tx = xs[x - xb];
          const float v = ty.w_lo * (tx.w_lo * row_lo[tx.lo] + tx.w_hi * row_lo[tx.hi]) +
                          ty.w_hi * (tx.w_lo * row_hi[tx.lo] + tx.w_hi * row_hi[tx.hi]);
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

}  // namespace

namespace detail {

at::Tensor paste_masks_in_image_aten(const at::Tensor& masks, const at::Tensor& boxes,
                                     int64_t height, int64_t width, double threshold) {
  const int64_t n = masks.size(0);
  auto opts = masks.options();
  auto out = at::empty({n, height, width}, threshold >= 0 ? opts.dtype(at::kBool) : opts);
  if (n == 0 || height == 0 || width == 0) return out;
  auto px = at::arange(width, opts) + 0.5;
  auto py = at::arange(height, opts) + 0.5;
  // Chunks keep the [chunk, H, W, 2] sampling grid under ~1 GiB.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 27) / (height * width));
  for (int64_t s = 0; s < n; s += chunk) {
    const int64_t e = std::min(n, s + chunk);
    auto b = boxes.slice(0, s, e);
    auto x0 = b.select(1, 0).unsqueeze(1), y0 = b.select(1, 1).unsqueeze(1);
    auto x1 = b.select(1, 2).unsqueeze(1), y1 = b.select(1, 3).unsqueeze(1);
    auto gx = (px.unsqueeze(0) - x0) / (x1 - x0) * 2 - 1;  // [c, W]
    auto gy = (py.unsqueeze(0) - y0) / (y1 - y0) * 2 - 1;  // [c, H]
    auto grid = at::stack({gx.unsqueeze(1).expand({e - s, height, width}),
                           gy.unsqueeze(2).expand({e - s, height, width})},
                          3);
    auto probs = at::grid_sampler(masks.slice(0, s, e).unsqueeze(1), grid, /*bilinear*/ 0,
                                  /*zeros*/ 0, /*align_corners=*/false)
                     .select(1, 0);
    // Degenerate boxes (x1 <= x0) paste nothing, as in the CPU kernel.
    auto inside_x =
        (px.unsqueeze(0) >= x0).logical_and_(px.unsqueeze(0) <= x1).logical_and_(x1 > x0);
    auto inside_y =
        (py.unsqueeze(0) >= y0).logical_and_(py.unsqueeze(0) <= y1).logical_and_(y1 > y0);
    auto inside = inside_y.unsqueeze(2).logical_and(inside_x.unsqueeze(1));
    probs = at::where(inside, probs, at::zeros({}, probs.options()));
    out.slice(0, s, e).copy_(threshold >= 0 ? (probs >= threshold) : probs);
  }
  return out;
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
  m = m.to(at::kFloat).contiguous();
  auto b = boxes.to(at::kFloat).contiguous();
  if (!m.is_cpu()) return detail::paste_masks_in_image_aten(m, b, height, width, threshold);
  auto out = at::zeros({m.size(0), height, width},
                       m.options().dtype(threshold >= 0 ? at::kBool : at::kFloat));
  if (out.numel() == 0 || m.size(1) == 0 || m.size(2) == 0) return out;
  if (threshold >= 0) {
    paste_cpu<bool>(m, b, height, width, static_cast<float>(threshold), out);
  } else {
    paste_cpu<float>(m, b, height, width, 0.0f, out);
  }
  return out;
}

}  // namespace largedet::ops
