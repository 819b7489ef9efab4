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

std::vector<MaskEdge> mask_edges(const evaluation::Rle& rle, const CropWindow& window) {
  std::vector<MaskEdge> edges;
  if (rle.h == 0 || rle.w == 0 || window.width <= 0 || window.height <= 0) return edges;
  LARGEDET_CHECK(window.x0 >= 0 && window.y0 >= 0 && uint32_t(window.x0 + window.width) <= rle.w &&
                     uint32_t(window.y0 + window.height) <= rle.h,
                 "a crop window outside its ", rle.w, "x", rle.h, " mask");
  const std::vector<uint8_t> decoded = evaluation::rle_decode(rle);  // column-major: [w][h]
  const uint32_t h = rle.h, w = static_cast<uint32_t>(window.width);
  const uint32_t rows = static_cast<uint32_t>(window.height);
  const std::vector<uint8_t> outside(h, 0);
  // Boundary x lies between the window's columns x - 1 and x (outside it: 0); a run of rows where
  // the two differ is one edge.
  for (uint32_t x = 0; x <= w; ++x) {
    const size_t column = size_t(window.x0) + x;
    const uint8_t* left = x == 0 ? outside.data() : decoded.data() + (column - 1) * h + window.y0;
    const uint8_t* right = x == w ? outside.data() : decoded.data() + column * h + window.y0;
    for (uint32_t y = 0; y < rows;) {
      if ((left[y] != 0) == (right[y] != 0)) {
        ++y;
        continue;
      }
      const uint32_t y0 = y;
      while (y < rows && (left[y] != 0) != (right[y] != 0)) ++y;
      edges.push_back({static_cast<float>(x), static_cast<float>(y0), static_cast<float>(y)});
    }
  }
  return edges;
}

std::vector<MaskEdge> mask_edges(const evaluation::Rle& rle) {
  return mask_edges(rle, CropWindow{0, 0, static_cast<int>(rle.w), static_cast<int>(rle.h)});
}

namespace {

// detectron2's Boxes.nonempty threshold: what is left of an instance narrower or lower than this
// (in output pixels) is not a target.
constexpr double kEmptyBox = 1e-5;

using Box = std::array<double, 4>;

// One axis of the map from the record's coordinates to the output image's pixels: (v - offset) *
// scale.
struct Axis {
  double offset = 0, scale = 1;
  double operator()(double v) const { return (v - offset) * scale; }
};

// A polygon list whose first polygon has 4 numbers is read as boxes (pycocotools' frPyObjects).
bool real_polygons(const evaluation::Segmentation& seg) {
  return seg.kind == evaluation::Segmentation::Kind::kPolygons &&
         !(seg.polygons.size() > 0 && seg.polygons[0].size() == 4);
}

// The extent of the edges of a mask: its bitmap's [first column, last column + 1] x [first row,
// last row + 1], as detectron2's BitMasks.get_bounding_boxes.
Box edges_extent(const std::vector<MaskEdge>& edges) {
  Box box = kNoExtent;
  for (const MaskEdge& e : edges) {
    box = {std::min(box[0], double(e.x)), std::min(box[1], double(e.y0)),
           std::max(box[2], double(e.x)), std::max(box[3], double(e.y1))};
  }
  return box;
}

}  // namespace

Target transform_instances(const std::vector<Instance>& instances, bool normalized,
                           const TransformParams& p, const TargetOptions& options) {
  std::vector<const Instance*> candidates;
  for (const auto& i : instances) {
    if (options.keep_crowd || !i.iscrowd) candidates.push_back(&i);
  }
  // The kept part of the original image, in its pixels.
  const CropWindow window = p.crop.value_or(CropWindow{0, 0, p.in_width, p.in_height});
  // The record's coordinates (pixels, or fractions of the image when `normalized`) to the output
  // image's; without a crop exactly the scale out / in.
  Axis ax, ay;
  if (!p.crop) {
    ax.scale = normalized ? p.out_width : static_cast<double>(p.out_width) / p.in_width;
    ay.scale = normalized ? p.out_height : static_cast<double>(p.out_height) / p.in_height;
  } else {
    const double units_x = normalized ? p.in_width : 1, units_y = normalized ? p.in_height : 1;
    ax = {window.x0 / units_x, units_x * p.out_width / window.width};
    ay = {window.y0 / units_y, units_y * p.out_height / window.height};
  }
  // Masks are in the original image's pixels, cropped to the window: their edges scale by out /
  // window.
  const double mask_sx = static_cast<double>(p.out_width) / window.width;
  const double mask_sy = static_cast<double>(p.out_height) / window.height;
  const double W = p.out_width, H = p.out_height;
  // detectron2's mapper recomputes the boxes of a crop from the cropped masks.
  const bool recompute = p.crop && options.masks;

  std::vector<Box> boxes(candidates.size());
  std::vector<std::vector<MaskEdge>> edges(options.masks ? candidates.size() : 0);
  for (size_t k = 0; k < candidates.size(); ++k) {
    const Instance& inst = *candidates[k];
    Box& box = boxes[k];
    box = {ax(inst.box[0]), ay(inst.box[1]), ax(inst.box[2]), ay(inst.box[3])};
    if (!options.masks) continue;
    const auto& seg = inst.segmentation;
    if (seg.empty()) continue;  // no segmentation: an empty mask, the box as annotated
    const evaluation::Rle rle = evaluation::segmentation_to_rle(
        seg, static_cast<uint32_t>(p.in_height), static_cast<uint32_t>(p.in_width));
    edges[k] = mask_edges(rle, window);
    if (!recompute) continue;
    Box extent = kNoExtent;
    if (real_polygons(seg)) {
      for (const auto& polygon : seg.polygons)
        add_polygon_extent(polygon, window.x0, window.y0, window.x0 + window.width,
                           window.y0 + window.height, &extent);
      box = {ax(extent[0]), ay(extent[1]), ax(extent[2]), ay(extent[3])};
    } else {
      extent = edges_extent(edges[k]);
      box = {extent[0] * mask_sx, extent[1] * mask_sy, extent[2] * mask_sx, extent[3] * mask_sy};
    }
  }

  // Clipped to the image and filtered as detectron2's transform_instance_annotations and
  // filter_empty_instances do (boxes inside the image stay as they are: the readers clip them).
  std::vector<size_t> kept;
  for (size_t k = 0; k < candidates.size(); ++k) {
    Box& b = boxes[k];
    b = {std::clamp(b[0], 0.0, W), std::clamp(b[1], 0.0, H), std::clamp(b[2], 0.0, W),
         std::clamp(b[3], 0.0, H)};
    if (b[2] - b[0] > kEmptyBox && b[3] - b[1] > kEmptyBox) kept.push_back(k);
  }
  const int64_t n = static_cast<int64_t>(kept.size());
  Target target;
  target.boxes = at::empty({n, 4}, at::kFloat);
  target.labels = at::empty({n}, at::kLong);
  target.is_group_of = at::empty({n}, at::kBool);
  auto out_boxes = target.boxes.accessor<float, 2>();
  size_t most = 0;
  for (int64_t i = 0; i < n; ++i) {
    const size_t k = kept[i];
    const Box& b = boxes[k];
    out_boxes[i][0] = static_cast<float>(p.flip ? W - b[2] : b[0]);
    out_boxes[i][1] = static_cast<float>(b[1]);
    out_boxes[i][2] = static_cast<float>(p.flip ? W - b[0] : b[2]);
    out_boxes[i][3] = static_cast<float>(b[3]);
    target.labels.data_ptr<int64_t>()[i] = candidates[k]->label;
    target.is_group_of.data_ptr<bool>()[i] = candidates[k]->is_group_of;
    if (options.masks) most = std::max(most, edges[k].size());
  }
  if (options.masks) {
    target.mask_edges = at::zeros({n, static_cast<int64_t>(most), 3}, at::kFloat);
    auto out = target.mask_edges.accessor<float, 3>();
    for (int64_t i = 0; i < n; ++i) {
      const auto& instance_edges = edges[kept[i]];
      for (size_t j = 0; j < instance_edges.size(); ++j) {
        const double x = instance_edges[j].x * mask_sx;
        out[i][j][0] = static_cast<float>(p.flip ? W - x : x);
        out[i][j][1] = static_cast<float>(instance_edges[j].y0 * mask_sy);
        out[i][j][2] = static_cast<float>(instance_edges[j].y1 * mask_sy);
      }
    }
  }
  return target;
}

}  // namespace largedet::data
