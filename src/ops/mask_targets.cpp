#include "largedet/ops/mask_targets.h"

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <algorithm>

#include "largedet/core/error.h"

namespace largedet::ops {

at::Tensor rasterize_mask_edges(const at::Tensor& edges, const at::Tensor& instances,
                                const at::Tensor& boxes, int64_t resolution) {
  LARGEDET_CHECK(edges.dim() == 3 && edges.size(2) == 3,
                 "mask edges are not [N, E, 3]: ", edges.sizes());
  LARGEDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && instances.dim() == 1 &&
                     instances.size(0) == boxes.size(0),
                 "rasterize_mask_edges: ", instances.sizes(), " instances for boxes ",
                 boxes.sizes());
  LARGEDET_CHECK(resolution > 0, "rasterize_mask_edges: resolution ", resolution);
  const int64_t R = boxes.size(0), M = resolution, E = edges.size(1);
  const auto options = boxes.options().dtype(at::kFloat);
  if (R == 0 || E == 0) return at::zeros({R, M, M}, options);
  const auto b = boxes.to(at::kFloat);
  const auto x1 = b.select(1, 0).unsqueeze(1), y1 = b.select(1, 1).unsqueeze(1);
  const auto w = (b.select(1, 2) - b.select(1, 0)).clamp_min(1).unsqueeze(1);
  const auto h = (b.select(1, 3) - b.select(1, 1)).clamp_min(1).unsqueeze(1);
  const auto centres = (at::arange(M, options) + 0.5) / static_cast<double>(M);  // [M]
  const auto px = x1 + centres * w;                                              // [R, M]
  const auto py = y1 + centres * h;
  // The counts must stay exact: no autocast to half or bf16 for the product below.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto e = edges.to(at::kFloat);
  auto out = at::empty({R, M, M}, options);
  // R x M x E booleans per operand: chunks keep them near 16 M elements.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{1} << 24) / (M * E));
  for (int64_t start = 0; start < R; start += chunk) {
    const int64_t n = std::min(chunk, R - start);
    const auto mine = e.index_select(0, instances.narrow(0, start, n));  // [n, E, 3]
    const auto ex = mine.select(2, 0).unsqueeze(1);                      // [n, 1, E]
    const auto ey0 = mine.select(2, 1).unsqueeze(1), ey1 = mine.select(2, 2).unsqueeze(1);
    const auto y = py.narrow(0, start, n).unsqueeze(2);  // [n, M, 1]
    const auto x = px.narrow(0, start, n).unsqueeze(2);
    const auto rows = ((ey0 <= y) & (y < ey1)).to(at::kFloat);  // [n, M(rows), E]
    const auto passed = (x < ex).to(at::kFloat);                // [n, M(cols), E]
    // Crossings per bin centre: exact in float (counts far below 2^24).
    const auto crossings = at::bmm(rows, passed.transpose(1, 2));  // [n, M, M]
    out.narrow(0, start, n).copy_(at::remainder(crossings, 2.0));
  }
  return out;
}

}  // namespace largedet::ops
