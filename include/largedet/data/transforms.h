// Geometric transforms, applied to an image and its instances together so that boxes, polygons
// and masks follow the pixels exactly.
//
// Crop (optional, crop.h), then resize: ResizeShortestEdge as detectron2 defines it (scale the
// short side to S, then shrink so the long side is <= max_size, round to nearest). The data layer
// only chooses the crop, the size and the flip, crops the pixels and transforms the instances; the
// pixels are resized and mirrored by the model on its device (modeling::Transform). Boxes shift by
// the crop's corner and scale by out/crop per axis, clipped to the image; masks are rasterised at
// the original size (pycocotools' rule), cropped, and travel as the edges of their outline, scaled
// and mirrored like the boxes. Flip: x -> W - x.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "largedet/data/crop.h"
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
  // The part of the original image kept before the resize; none: all of it. With masks, the boxes
  // of a cropped image are the cropped masks' extents (detectron2's recompute_boxes).
  std::optional<CropWindow> crop;
};

// A vertical edge of a mask's outline: x = const, y0 <= y < y1 (ops/mask_targets.h).
struct MaskEdge {
  float x, y0, y1;
};

// The edges of a mask in its own pixel coordinates (vertical runs merged): rasterised at the
// centres of its pixels, they give back exactly the mask.
std::vector<MaskEdge> mask_edges(const evaluation::Rle& rle);
// The same for the part of the mask inside `window`, in the window's coordinates.
std::vector<MaskEdge> mask_edges(const evaluation::Rle& rle, const CropWindow& window);

struct TargetOptions {
  bool masks = false;       // segmentations into Target::mask_edges
  bool keep_crowd = false;  // crowd regions are not training targets by default (as detectron2)
};

// Instances of a record (original coordinates, or normalised when `normalized`) -> Target: crowd
// regions dropped unless kept, boxes clipped to the output image, instances left without area
// (under 1e-5 px wide or high, detectron2's threshold) dropped.
Target transform_instances(const std::vector<Instance>& instances, bool normalized,
                           const TransformParams& params, const TargetOptions& options = {});

}  // namespace largedet::data
