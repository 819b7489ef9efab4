#include "largedet/data/crop.h"

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/data/seed.h"

namespace largedet::data {

namespace {

// Uniform in [lo, hi].
int uniform_between(uint64_t r, int lo, int hi) { return static_cast<int>(uniform_int(r, lo, hi)); }

// detectron2's int(size * fraction + 0.5), at least one pixel.
int relative_size(int size, double fraction) {
  return std::max(1, static_cast<int>(size * fraction + 0.5));
}

bool whole(double v) { return v >= 1 && v <= 1e9 && v == std::floor(v); }

}  // namespace

CropType parse_crop_type(const std::string& name) {
  if (name == "relative_range") return CropType::kRelativeRange;
  if (name == "relative") return CropType::kRelative;
  if (name == "absolute") return CropType::kAbsolute;
  if (name == "absolute_range") return CropType::kAbsoluteRange;
  throw Error("unknown crop type '" + name + "'", "INPUT.CROP.TYPE",
              "use relative_range, relative, absolute or absolute_range");
}

void check_crop_options(const CropOptions& o) {
  const double h = o.size[0], w = o.size[1];
  const std::string size = detail::concat("[", h, ", ", w, "]");
  switch (o.type) {
    case CropType::kRelativeRange:
    case CropType::kRelative:
      if (!(h > 0 && h <= 1 && w > 0 && w <= 1))
        throw Error("a relative crop's size " + size + " is not a pair of fractions in (0, 1]",
                    "INPUT.CROP.SIZE", "write e.g. [0.9, 0.9] (height, width)");
      return;
    case CropType::kAbsolute:
      if (!whole(h) || !whole(w))
        throw Error("an absolute crop's size " + size + " is not a pair of whole pixels >= 1",
                    "INPUT.CROP.SIZE", "write e.g. [512, 512] (height, width)");
      return;
    case CropType::kAbsoluteRange:
      if (!whole(h) || !whole(w) || h > w)
        throw Error("absolute_range's size " + size + " is not [min, max] in whole pixels >= 1",
                    "INPUT.CROP.SIZE", "write e.g. [384, 600] (the least and most pixels)");
      return;
  }
}

Image crop_image(const Image& image, const CropWindow& w) {
  LARGEDET_CHECK(w.x0 >= 0 && w.y0 >= 0 && w.width > 0 && w.height > 0 &&
                     w.x0 + w.width <= image.width && w.y0 + w.height <= image.height,
                 "a crop window (", w.x0, ", ", w.y0, ") + ", w.width, "x", w.height,
                 " outside its ", image.width, "x", image.height, " image");
  Image out;
  out.width = w.width;
  out.height = w.height;
  out.warning = image.warning;
  out.rgb.resize(out.pixels() * 3);
  const size_t row = size_t(w.width) * 3;
  for (int y = 0; y < w.height; ++y) {
    std::copy_n(image.rgb.data() + (size_t(w.y0 + y) * image.width + w.x0) * 3, row,
                out.rgb.data() + size_t(y) * row);
  }
  return out;
}

CropWindow random_crop_window(int height, int width, const CropOptions& o, uint64_t seed) {
  LARGEDET_CHECK(height > 0 && width > 0, "cannot crop a ", width, "x", height, " image");
  const uint64_t r_height = mix_seed(seed, 1), r_width = mix_seed(seed, 2);
  CropWindow window;
  switch (o.type) {
    case CropType::kRelative:
      window.height = relative_size(height, o.size[0]);
      window.width = relative_size(width, o.size[1]);
      break;
    case CropType::kRelativeRange:
      window.height = relative_size(height, o.size[0] + uniform01(r_height) * (1 - o.size[0]));
      window.width = relative_size(width, o.size[1] + uniform01(r_width) * (1 - o.size[1]));
      break;
    case CropType::kAbsolute:
      window.height = std::min(static_cast<int>(o.size[0]), height);
      window.width = std::min(static_cast<int>(o.size[1]), width);
      break;
    case CropType::kAbsoluteRange: {
      const int lo = static_cast<int>(o.size[0]), hi = static_cast<int>(o.size[1]);
      window.height = uniform_between(r_height, std::min(height, lo), std::min(height, hi));
      window.width = uniform_between(r_width, std::min(width, lo), std::min(width, hi));
      break;
    }
  }
  window.height = std::min(window.height, height);
  window.width = std::min(window.width, width);
  window.y0 = uniform_between(mix_seed(seed, 3), 0, height - window.height);
  window.x0 = uniform_between(mix_seed(seed, 4), 0, width - window.width);
  return window;
}

bool add_polygon_extent(const std::vector<double>& xy, double left, double top, double right,
                        double bottom, std::array<double, 4>* extent) {
  bool any = false;
  auto add = [&](double x, double y) {
    (*extent)[0] = std::min((*extent)[0], x);
    (*extent)[1] = std::min((*extent)[1], y);
    (*extent)[2] = std::max((*extent)[2], x);
    (*extent)[3] = std::max((*extent)[3], y);
    any = true;
  };
  const size_t n = xy.size() / 2;
  if (n < 3) return false;
  auto inside = [&](double x, double y) {
    return x >= left && x <= right && y >= top && y <= bottom;
  };
  for (size_t i = 0; i < n; ++i) {
    const double ax = xy[2 * i], ay = xy[2 * i + 1];
    const double bx = xy[2 * ((i + 1) % n)], by = xy[2 * ((i + 1) % n) + 1];
    if (inside(ax, ay)) add(ax, ay);
    // Where the edge crosses each side's line, if that point lies on the side.
    for (const double x : {left, right}) {
      if ((ax - x) * (bx - x) > 0 || ax == bx) continue;
      const double y = ay + (x - ax) / (bx - ax) * (by - ay);
      if (y >= top && y <= bottom) add(x, y);
    }
    for (const double y : {top, bottom}) {
      if ((ay - y) * (by - y) > 0 || ay == by) continue;
      const double x = ax + (y - ay) / (by - ay) * (bx - ax);
      if (x >= left && x <= right) add(x, y);
    }
  }
  // A corner of the rectangle inside the polygon (even-odd: a ray to the right crosses it an odd
  // number of times).
  for (const double cy : {top, bottom}) {
    for (const double cx : {left, right}) {
      bool in = false;
      for (size_t i = 0, j = n - 1; i < n; j = i++) {
        const double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
        if ((yi > cy) != (yj > cy) && cx < xj + (cy - yj) / (yi - yj) * (xi - xj)) in = !in;
      }
      if (in) add(cx, cy);
    }
  }
  return any;
}

}  // namespace largedet::data
