// Mask R-CNN's mask targets from compact masks: each instance's mask travels as the vertical edges
// of its outline, and each positive RoI's M x M target is rasterised from them on the device.
//
// An edge (x, y0, y1) is the vertical segment x = const, y0 <= y < y1 where a row of the mask
// changes between outside and inside; horizontal edges never cross a horizontal ray, so they are
// not needed. A point (px, py) is inside when the ray from it towards +x crosses an odd number of
// edges (x > px, y0 <= py < y1). For the edges of a bitmap this is exactly the bitmap's value at
// the pixel holding the point, whatever scale and mirroring the edges went through with the image.
//
// The count for all M x M bin centres of R RoIs is one batched matrix product, rows-hit [R, M, E]
// times columns-passed [R, E, M]: no host synchronisation and no per-RoI loop.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace largedet::ops {

// edges      [N, E, 3] float (x, y0, y1) per instance, padded with rows of zeros (y0 == y1:
//            they cross nothing)
// instances  [R] int64: the instance of each RoI
// boxes      [R, 4] float xyxy, in the edges' coordinates
// Returns [R, M, M] float 0/1: the instance's mask at the centres of an M x M grid of bins over
// each box (bin size max(box side, 1) / M, as RoIAlign with aligned=false and spatial_scale 1).
at::Tensor rasterize_mask_edges(const at::Tensor& edges, const at::Tensor& instances,
                                const at::Tensor& boxes, int64_t resolution);

}  // namespace largedet::ops
