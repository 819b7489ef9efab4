#include "largedet/ops/matcher.h"

#include "largedet/core/error.h"

namespace largedet::ops {

Matcher::Matcher(double high_threshold, double low_threshold, bool allow_low_quality_matches)
    : high_(high_threshold), low_(low_threshold), allow_low_quality_(allow_low_quality_matches) {
  LARGEDET_CHECK(low_threshold <= high_threshold, "Matcher: low threshold ", low_threshold,
                 " is above the high threshold ", high_threshold);
}

at::Tensor Matcher::operator()(const at::Tensor& quality) const {
  LARGEDET_CHECK(quality.dim() == 2 || quality.dim() == 3,
                 "Matcher: expected a [num_gt, num_predictions] matrix or a batch of them, got ",
                 quality.sizes());
  auto long_opts = quality.options().dtype(at::kLong);
  auto result_sizes = quality.sizes().vec();
  result_sizes.erase(result_sizes.end() - 2);
  if (quality.size(-2) == 0) return at::full(result_sizes, kBelowLowThreshold, long_opts);
  if (quality.size(-1) == 0) return at::empty(result_sizes, long_opts);

  auto [matched_vals, matches] = quality.max(-2);
  auto all_matches = matches.clone();
  auto below = matched_vals < low_;
  auto between = (matched_vals >= low_).logical_and_(matched_vals < high_);
  matches.masked_fill_(below, kBelowLowThreshold);
  matches.masked_fill_(between, kBetweenThresholds);

  if (allow_low_quality_) {
    // Every prediction tied for a ground truth's best quality gets its own best match back.
    auto highest = std::get<0>(quality.max(-1)).unsqueeze(-1);
    auto is_best = (quality == highest).logical_and_(highest > 0);
    auto update = is_best.any(-2);
    matches = at::where(update, all_matches, matches);
  }
  return matches;
}

}  // namespace largedet::ops
