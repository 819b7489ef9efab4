// Box validation shared by the dataset readers (private to src/data).
#pragma once

#include <array>
#include <string>

#include "largedet/data/bad_input.h"

namespace largedet::data {

// Validates an xyxy box and clips it to [0, width] x [0, height] (no clipping where a size is
// <= 0, i.e. unknown; pass 1 and 1 for normalised boxes). NaN/inf, zero or negative size and
// boxes with nothing left inside the image are reported as kInvalidBox and give false; boxes that
// needed clipping are reported as kClippedBox and kept.
bool check_box(const std::array<double, 4>& xyxy, double width, double height,
               const std::string& where, BadInputLog& bad, std::array<float, 4>* out);

}  // namespace largedet::data
