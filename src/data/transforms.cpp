#include "largedet/data/transforms.h"

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/evaluation/rle.h"

namespace largedet::data {

std::pair<int, int> resize_shortest_edge_size(int height, int width, int short_side, int max_size) {
  LARGEDET_CHECK(height > 0 && width > 0 && short_side > 0, "cannot resize a ", width, "x", height,
                 " image to short side ", short_side);
  double scale = static_cast<double>(short_side) / std::min(height, width);
  double h = height * scale, w = width * scale;
  if (max_size > 0 && std::max(h, w) > max_size) {
    const double shrink = max_size / std::max(h, w);
    h *= shrink;
    w *= shrink;
  }
  return {std::max(1, static_cast<int>(h + 0.5)), std::max(1, static_cast<int>(w + 0.5))};
}

std::vector<MaskEdge> mask_edges(const evaluation::Rle& rle) {
  std::vector<MaskEdge> edges;
  if (rle.h == 0 || rle.w == 0) return edges;
  const std::vector<uint8_t> decoded = evaluation::rle_decode(rle);  // column-major: [w][h]
  const uint32_t h = rle.h, w = rle.w;
  const std::vector<uint8_t> outside(h, 0);
  // Boundary x lies between columns x - 1 and x (outside the image: 0); a run of rows where the
  // two differ is one edge.
  for (uint32_t x = 0; x <= w; ++x) {
    const uint8_t* left = x == 0 ? outside.data() : decoded.data() + size_t(x - 1) * h;
    const uint8_t* right = x == w ? outside.data() : decoded.data() + size_t(x) * h;
    for (uint32_t y = 0; y < h;) {
      if ((left[y] != 0) == (right[y] != 0)) {
        ++y;
        continue;
      }
      const uint32_t y0 = y;
      while (y < h && (left[y] != 0) != (right[y] != 0)) ++y;
      edges.push_back({static_cast<float>(x), static_cast<float>(y0), static_cast<float>(y)});
    }
  }
  return edges;
}

Target transform_instances(const std::vector<Instance>& instances, bool normalized,
                           const TransformParams& p, const TargetOptions& options) {
  std::vector<const Instance*> kept;
  for (const auto& i : instances) {
    if (options.keep_crowd || !i.iscrowd) kept.push_back(&i);
  }
  const int64_t n = static_cast<int64_t>(kept.size());
  Target target;
  target.boxes = at::empty({n, 4}, at::kFloat);
  target.labels = at::empty({n}, at::kLong);
  target.is_group_of = at::empty({n}, at::kBool);
  target.polygons.resize(n);
  // Scale from the record's coordinates to the output image.
  const double sx = normalized ? p.out_width : static_cast<double>(p.out_width) / p.in_width;
  const double sy = normalized ? p.out_height : static_cast<double>(p.out_height) / p.in_height;
  const double W = p.out_width;
  auto boxes = target.boxes.accessor<float, 2>();
  for (int64_t k = 0; k < n; ++k) {
    const Instance& inst = *kept[k];
    double x1 = inst.box[0] * sx, y1 = inst.box[1] * sy;
    double x2 = inst.box[2] * sx, y2 = inst.box[3] * sy;
    if (p.flip) {
      const double fx1 = W - x2, fx2 = W - x1;
      x1 = fx1;
      x2 = fx2;
    }
    boxes[k][0] = static_cast<float>(x1);
    boxes[k][1] = static_cast<float>(y1);
    boxes[k][2] = static_cast<float>(x2);
    boxes[k][3] = static_cast<float>(y2);
    target.labels.data_ptr<int64_t>()[k] = inst.label;
    target.is_group_of.data_ptr<bool>()[k] = inst.is_group_of;
    const auto& seg = inst.segmentation;
    if (seg.kind == evaluation::Segmentation::Kind::kPolygons &&
        !(seg.polygons.size() > 0 && seg.polygons[0].size() == 4)) {
      for (const auto& poly : seg.polygons) {
        std::vector<float> xy(poly.size());
        for (size_t j = 0; j + 1 < poly.size(); j += 2) {
          const double x = poly[j] * sx;
          xy[j] = static_cast<float>(p.flip ? W - x : x);
          xy[j + 1] = static_cast<float>(poly[j + 1] * sy);
        }
        target.polygons[k].push_back(std::move(xy));
      }
    }
  }
  if (options.masks) {
    std::vector<std::vector<MaskEdge>> edges(n);
    size_t most = 0;
    for (int64_t k = 0; k < n; ++k) {
      const auto& seg = kept[k]->segmentation;
      if (seg.empty()) continue;  // no segmentation: an empty mask
      const evaluation::Rle rle = evaluation::segmentation_to_rle(
          seg, static_cast<uint32_t>(p.in_height), static_cast<uint32_t>(p.in_width));
      edges[k] = mask_edges(rle);
      most = std::max(most, edges[k].size());
    }
    target.mask_edges = at::zeros({n, static_cast<int64_t>(most), 3}, at::kFloat);
    auto out = target.mask_edges.accessor<float, 3>();
    for (int64_t k = 0; k < n; ++k) {
      for (size_t j = 0; j < edges[k].size(); ++j) {
        const double x = edges[k][j].x * sx;
        out[k][j][0] = static_cast<float>(p.flip ? W - x : x);
        out[k][j][1] = static_cast<float>(edges[k][j].y0 * sy);
        out[k][j][2] = static_cast<float>(edges[k][j].y1 * sy);
      }
    }
  }
  return target;
}

}  // namespace largedet::data
