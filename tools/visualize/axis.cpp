#include "visualize/axis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace largedet::tools {

double Scale::fraction(double value) const {
  if (log) return (std::log10(value) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  return (value - lo) / (hi - lo);
}

std::string Scale::label(double value) const {
  char text[32];
  if (value == 0) return "0";
  if (log || step <= 0 || step < 1e-4) {
    std::snprintf(text, sizeof text, "%g", value);  // small learning rates: 2.5e-05
  } else if (step >= 1000 && std::fmod(step, 1000) == 0) {
    std::snprintf(text, sizeof text, "%gk", value / 1000);  // iterations: 20k, not 20000
  } else {
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
  }
  return text;
}

Scale linear_scale(double lo, double hi, int target) {
  Scale scale;
  if (!(hi > lo)) {  // one value (or none): show a band around it
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  scale.lo = lo;
  scale.hi = hi;
  const double raw = (hi - lo) / target;
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  scale.step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  // Multiples of the step, computed (not accumulated) so that 0.1 * 3 prints as 0.3.
  for (double k = std::ceil(lo / scale.step - 1e-9); k * scale.step <= hi * (1 + 1e-12); ++k)
    scale.ticks.push_back(std::abs(k) < 1e-9 ? 0.0 : k * scale.step);
  return scale;
}

Scale log_scale(double lo, double hi) {
  Scale scale;
  scale.log = true;
  scale.lo = lo;
  scale.hi = hi;
  for (const bool dense : {false, true}) {  // decades first; 1-2-5 when fewer than 3 of them
    scale.ticks.clear();
    for (int e = int(std::floor(std::log10(lo))); e <= int(std::ceil(std::log10(hi))); ++e) {
      for (const double m : {1.0, 2.0, 5.0}) {
        if (!dense && m != 1.0) continue;
        const double value = m * std::pow(10, e);
        if (value >= lo * (1 - 1e-9) && value <= hi * (1 + 1e-9)) scale.ticks.push_back(value);
      }
    }
    if (scale.ticks.size() >= 3) break;
  }
  return scale;
}

Scale log2_scale(double lo, double hi, int target) {
  Scale scale;
  scale.log = true;
  scale.lo = lo;
  scale.hi = hi;
  const int first = static_cast<int>(std::ceil(std::log2(lo) - 1e-9));
  const int last = static_cast<int>(std::floor(std::log2(hi) + 1e-9));
  const int stride = last - first + 1 > target ? 2 : 1;
  for (int e = first; e <= last; e += stride) scale.ticks.push_back(std::ldexp(1.0, e));
  return scale;
}

}  // namespace largedet::tools
