// Command-line number checks that CLI11's Range lacks: NaN compares false with everything, so
// Range(0, 1) lets "nan" through; and its message prints 1.797693e+308 for "no upper bound".
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

namespace largedet::tools {

// A finite number in [lo, hi].
inline CLI::Validator finite_in(double lo, double hi) {
  std::ostringstream range;
  range << lo << " to " << hi;
  return CLI::Validator(
      [lo, hi, text = range.str()](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi)
          return "'" + value + "' is not a number from " + text;
        return "";
      },
      "FLOAT in [" + range.str() + "]");
}

}  // namespace largedet::tools
