#include "box_check.h"

#include <algorithm>
#include <cmath>

namespace largedet::data {

BoxCheck check_box(const std::array<double, 4>& b, double width, double height,
                   std::array<float, 4>* out, std::string* why) {
  for (double v : b) {
    if (!std::isfinite(v)) {
      *why = "box has a NaN or infinite coordinate";
      return BoxCheck::kInvalid;
    }
  }
  if (!(b[2] > b[0] && b[3] > b[1])) {
    *why = "box has zero or negative size";
    return BoxCheck::kInvalid;
  }
  std::array<double, 4> c = b;
  if (width > 0) {
    c[0] = std::clamp(c[0], 0.0, width);
    c[2] = std::clamp(c[2], 0.0, width);
  }
  if (height > 0) {
    c[1] = std::clamp(c[1], 0.0, height);
    c[3] = std::clamp(c[3], 0.0, height);
  }
  if (!(c[2] > c[0] && c[3] > c[1])) {
    *why = "box lies outside its image";
    return BoxCheck::kInvalid;
  }
  for (int k = 0; k < 4; ++k) (*out)[k] = static_cast<float>(c[k]);
  // Sub-pixel overshoot is rounding in the annotation tools (common in COCO): clipped silently.
  const double tolerance = width > 1 ? 1.0 : 1e-3;
  double overshoot = 0;
  for (int k = 0; k < 4; ++k) overshoot = std::max(overshoot, std::abs(c[k] - b[k]));
  if (overshoot > tolerance) {
    *why = "box extends outside its image";
    return BoxCheck::kClipped;
  }
  return BoxCheck::kOk;
}

}  // namespace largedet::data
