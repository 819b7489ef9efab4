// Random cropping before the resize, detectron2's RandomCrop (INPUT.CROP.*): the crop's size by one
// of four rules, its place uniform within the image. The instances follow in transforms.h: boxes
// clipped to the crop (and, with masks, recomputed from the cropped masks, as detectron2's mapper
// does), instances left without area dropped.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "largedet/data/image.h"

namespace largedet::data {

// INPUT.CROP.TYPE. Relative sizes are fractions of the image's height and width, absolute ones
// pixels; SIZE is [height, width] for relative, relative_range and absolute, [min, max] for
// absolute_range.
enum class CropType { kRelativeRange, kRelative, kAbsolute, kAbsoluteRange };

struct CropOptions {
  bool enabled = false;  // INPUT.CROP.ENABLED
  CropType type = CropType::kRelativeRange;
  std::array<double, 2> size{0.9, 0.9};  // INPUT.CROP.SIZE
};

// "relative_range", ... -> CropType; throws largedet::Error naming the four for anything else.
CropType parse_crop_type(const std::string& name);

// Throws largedet::Error saying what SIZE must be for `type` when it is not that (relative sizes in
// (0, 1], absolute ones whole numbers >= 1, absolute_range's min <= max).
void check_crop_options(const CropOptions& options);

// The part of an image that a crop keeps, in its pixels: [x0, x0 + width) x [y0, y0 + height).
struct CropWindow {
  int x0 = 0, y0 = 0;
  int width = 0, height = 0;
};

// The window's pixels of an image (RGB, row-major).
Image crop_image(const Image& image, const CropWindow& window);

// detectron2's RandomCrop.get_crop_size for an image of height x width, the window's corner
// uniform over the places where it fits. `seed` alone decides both.
CropWindow random_crop_window(int height, int width, const CropOptions& options, uint64_t seed);

// Extends `extent` (x1, y1, x2, y2; start from kNoExtent) to cover the part of polygon [x0, y0, x1,
// y1, ...] (even-odd rule) inside the rectangle [left, right] x [top, bottom], exactly: that part's
// extreme points are among the polygon's vertices inside the rectangle, its edges' crossings of the
// rectangle's sides and the rectangle's corners inside the polygon. Returns whether any part was
// inside. The box detectron2 recomputes from a cropped polygon mask (with shapely's intersection).
inline constexpr std::array<double, 4> kNoExtent{1e300, 1e300, -1e300, -1e300};
bool add_polygon_extent(const std::vector<double>& xy, double left, double top, double right,
                        double bottom, std::array<double, 4>* extent);

}  // namespace largedet::data
