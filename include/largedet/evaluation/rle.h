// Run-length encoded binary masks, bit-compatible with COCO's maskApi (pycocotools).
//
// A mask of h rows and w columns is read in column-major order (down each column, then right),
// and `counts` alternates runs of 0s and 1s starting with 0s (a mask that starts with a 1 has a
// leading count of 0). Every function here reproduces the corresponding maskApi routine exactly,
// so areas, IoUs and compressed strings equal pycocotools' to the pixel and to the byte.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace largedet::evaluation {

struct Rle {
  uint32_t h = 0;
  uint32_t w = 0;
  std::vector<uint32_t> counts;

  bool operator==(const Rle& other) const {
    return h == other.h && w == other.w && counts == other.counts;
  }
};

// Box as COCO writes it: x, y, width, height.
using BoxXywh = std::array<double, 4>;

// Encodes an h x w mask stored column-major (pycocotools' Fortran order); nonzero is foreground.
Rle rle_encode(const uint8_t* mask, uint32_t h, uint32_t w);
// Decodes to a column-major h x w mask of 0/1; throws largedet::Error when the runs do not sum to
// h * w.
std::vector<uint8_t> rle_decode(const Rle& rle);

// The compressed "counts" string of COCO's JSON (rleToString): LEB128-like, 6 bits per character.
std::string rle_to_string(const Rle& rle);
// Parses a compressed string (rleFrString). Throws largedet::Error on characters outside '0'..'o',
// a truncated final value, negative runs, or runs that do not sum to h * w.
Rle rle_from_string(std::string_view counts, uint32_t h, uint32_t w);

// Union (or intersection) of masks of one size (rleMerge). Masks of different sizes give an
// empty 0 x 0 RLE, as in maskApi.
Rle rle_merge(const std::vector<Rle>& rles, bool intersect = false);
// Foreground pixels (rleArea).
uint64_t rle_area(const Rle& rle);
// Tight bounding box of the foreground (rleToBbox); all zeros for an empty mask.
BoxXywh rle_to_bbox(const Rle& rle);

// One polygon [x0, y0, x1, y1, ...] rasterised exactly as maskApi's rleFrPoly does.
Rle rle_from_polygon(const double* xy, size_t num_points, uint32_t h, uint32_t w);
Rle rle_from_polygon(const std::vector<double>& xy, uint32_t h, uint32_t w);
// The rectangle of a box, via its polygon (rleFrBbox).
Rle rle_from_bbox(const BoxXywh& box, uint32_t h, uint32_t w);

// IoU of two boxes; for a crowd ground truth the union is the detection's area (bbIou).
double bbox_iou(const BoxXywh& dt, const BoxXywh& gt, bool gt_is_crowd);
// IoU of two masks (rleIou). `dt_box` and `gt_box` are the masks' rle_to_bbox, passed in so that
// callers compute them once: pairs whose boxes do not overlap are 0 without walking the runs.
// Masks of different sizes whose boxes overlap give -1, as in maskApi.
double rle_iou(const Rle& dt, const BoxXywh& dt_box, const Rle& gt, const BoxXywh& gt_box,
               bool gt_is_crowd);
double rle_iou(const Rle& dt, const Rle& gt, bool gt_is_crowd);

}  // namespace largedet::evaluation
