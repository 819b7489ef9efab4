// Geometric transforms, applied to an image and its instances together so that boxes, polygons
// and masks follow the pixels exactly.
//
// Resize: ResizeShortestEdge as detectron2 defines it (scale the short side to S, then shrink so
// the long side is <= max_size, round to nearest). The data layer only chooses the size and the
// flip and transforms the instances; the pixels are resized and mirrored by the model on its
// device (modeling::Transform). Boxes and polygons scale by out/in per axis; masks are rasterised
// at the original size (pycocotools' rule) and travel as the edges of their outline, scaled and
// mirrored like the boxes. Flip: x -> W - x.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "largedet/data/image.h"
#include "largedet/data/records.h"
#include "largedet/evaluation/rle.h"

namespace largedet::data {

// (height, width) after ResizeShortestEdge(short_side, max_size); max_size <= 0 means no limit.
std::pair<int, int> resize_shortest_edge_size(int height, int width, int short_side, int max_size);

// The per-image targets, in the coordinates of the transformed (resized, not padded) image.
struct Target {
  at::Tensor boxes;        // [N, 4] float32, x1 y1 x2 y2, absolute pixels
  at::Tensor labels;       // [N] int64 in 1..K (0 is background)
  at::Tensor is_group_of;  // [N] bool (OpenImages; all false elsewhere)
  // [N, E, 3] float32 (x, y0, y1): each instance's mask as the vertical edges of its outline
  // (ops/mask_targets.h), padded with zero rows; defined only when masks were asked for
  // (TargetOptions::masks). A few KB where a bitmap at the image size would take megabytes; the
  // model rasterises each positive RoI's target from them.
  at::Tensor mask_edges;
  // Per instance its polygons [x0, y0, x1, y1, ...] transformed like the boxes; empty for
  // instances whose segmentation is an RLE or absent.
  std::vector<std::vector<std::vector<float>>> polygons;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  // f(tensor&) for each defined tensor: what is pinned, copied to a device, marked used there.
  template <typename F>
  void for_each_tensor(F&& f) {
    for (at::Tensor* t : {&boxes, &labels, &is_group_of, &mask_edges})
      if (t->defined()) f(*t);
  }
};

struct TransformParams {
  int in_width = 0, in_height = 0;    // the original image
  int out_width = 0, out_height = 0;  // after resize
  bool flip = false;
};

// A vertical edge of a mask's outline: x = const, y0 <= y < y1 (ops/mask_targets.h).
struct MaskEdge {
  float x, y0, y1;
};

// The edges of a mask in its own pixel coordinates (vertical runs merged): rasterised at the
// centres of its pixels, they give back exactly the mask.
std::vector<MaskEdge> mask_edges(const evaluation::Rle& rle);

struct TargetOptions {
  bool masks = false;       // segmentations into Target::mask_edges
  bool keep_crowd = false;  // crowd regions are not training targets by default (as detectron2)
};

// Instances of a record (original coordinates, or normalised when `normalized`) -> Target.
Target transform_instances(const std::vector<Instance>& instances, bool normalized,
                           const TransformParams& params, const TargetOptions& options = {});

}  // namespace largedet::data
