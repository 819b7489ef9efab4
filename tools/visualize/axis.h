// Axis scales with round tick values for the curve plots (pure arithmetic, no drawing).
#pragma once

#include <string>
#include <vector>

namespace largedet::tools {

struct Scale {
  double lo = 0, hi = 1;      // the data range shown
  bool log = false;           // logarithmic axis (lo > 0)
  std::vector<double> ticks;  // round values inside [lo, hi]
  double step = 0;            // linear tick spacing (for the label precision)

  // Where `value` falls between lo (0) and hi (1).
  double fraction(double value) const;
  std::string label(double value) const;
};

// About `target` ticks at 1, 2 or 5 times a power of ten inside [lo, hi].
Scale linear_scale(double lo, double hi, int target = 6);
// Ticks at the powers of ten inside [lo, hi] (lo > 0), plus 2x and 5x when that gives too few.
Scale log_scale(double lo, double hi);
// Ticks at the powers of two inside [lo, hi] (lo > 0), every other one when there are more than
// `target`: batch sizes.
Scale log2_scale(double lo, double hi, int target = 10);

}  // namespace largedet::tools
