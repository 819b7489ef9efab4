// Box validation shared by the dataset readers (private to src/data).
#pragma once

#include <array>
#include <string>

#include "largedet/data/bad_input.h"

namespace largedet::data {

enum class BoxCheck { kOk, kClipped, kInvalid };

// Validates an xyxy box and clips it to [0, width] x [0, height] (no clipping where a size is
// <= 0, i.e. unknown; pass 1 and 1 for normalised boxes). NaN/inf, zero or negative size and
// boxes with nothing left inside the image give kInvalid with `why`; boxes clipped by more than
// the rounding tolerance give kClipped (with `why`). Cheap on the good path: the caller builds its
// message (file, id) only for boxes that need one.
BoxCheck check_box(const std::array<double, 4>& xyxy, double width, double height,
                   std::array<float, 4>* out, std::string* why);

// check_box, reporting to `bad` with the location from where() and the box as the file writes it
// from as_written() (both called only when reporting). Returns false when the box must be skipped.
template <typename Where, typename AsWritten>
bool check_box_and_report(const std::array<double, 4>& xyxy, double width, double height,
                          BadInputLog& bad, std::array<float, 4>* out, Where&& where,
                          AsWritten&& as_written) {
  std::string why;
  const BoxCheck check = check_box(xyxy, width, height, out, &why);
  if (check == BoxCheck::kOk) return true;
  const bool clipped = check == BoxCheck::kClipped;
  bad.report(clipped ? BadInput::kClippedBox : BadInput::kInvalidBox, why + ": " + as_written(),
             where());
  return clipped;
}

}  // namespace largedet::data
