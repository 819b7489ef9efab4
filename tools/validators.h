// Command-line number checks, in words, that CLI11's own lack: NaN compares false with everything,
// so Range(0, 1) lets "nan" through, and PositiveNumber's message prints 1.797693e+308.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

namespace largedet::tools {

// CLI11's PositiveNumber says "not in range 0.000000 to 1.797693e+308"; say it in words.
inline CLI::Validator at_least_one(const std::string& what) {
  return CLI::Validator(
      [what](std::string& value) -> std::string {
        char* end = nullptr;
        long n = std::strtol(value.c_str(), &end, 10);
        if (end == value.c_str() || *end != '\0' || n < 1)
          return value + " " + what + ": give at least 1";
        return "";
      },
      "INT>=1");
}

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
