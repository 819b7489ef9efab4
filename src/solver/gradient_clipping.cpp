#include "largedet/solver/gradient_clipping.h"

#include <ATen/ATen.h>

#include <cmath>

#include "largedet/core/config.h"
#include "largedet/core/error.h"

namespace largedet::solver {

ClipType clip_type_from_name(const std::string& name) {
  if (name == "value") return ClipType::kValue;
  if (name == "norm") return ClipType::kNorm;
  if (name == "full_model") return ClipType::kFullModel;
  throw Error("unknown gradient clipping type \"" + name + "\"", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE",
              "use value, norm or full_model");
}

void clip_gradients(const std::vector<at::Tensor>& grads, const GradientClippingOptions& options) {
  LARGEDET_CHECK(options.clip_value() > 0, "gradient clipping: CLIP_VALUE must be > 0, got ",
                 options.clip_value());
  LARGEDET_CHECK(options.norm_type() > 0, "gradient clipping: NORM_TYPE must be > 0, got ",
                 options.norm_type());
  std::vector<at::Tensor> defined;
  for (const auto& g : grads)
    if (g.defined()) defined.push_back(g);
  if (defined.empty()) return;
  const double limit = options.clip_value();
  if (options.type() == ClipType::kValue) {
    at::_foreach_clamp_min_(defined, -limit);
    at::_foreach_clamp_max_(defined, limit);
    return;
  }
  const std::vector<at::Tensor> norms = at::_foreach_norm(defined, options.norm_type());
  if (options.type() == ClipType::kNorm) {
    std::vector<at::Tensor> coefficients = at::_foreach_add(norms, 1e-6);
    at::_foreach_reciprocal_(coefficients);
    at::_foreach_mul_(coefficients, limit);
    at::_foreach_clamp_max_(coefficients, 1.0);
    at::_foreach_mul_(defined, coefficients);
    return;
  }
  const at::Tensor stacked = at::stack(norms);
  const at::Tensor total =
      std::isinf(options.norm_type()) ? stacked.max() : stacked.norm(options.norm_type());
  at::_foreach_mul_(defined, (limit / (total + 1e-6)).clamp_max(1.0));
}

std::optional<GradientClippingOptions> gradient_clipping_from_config(const Config& config) {
  if (!config.get<bool>("SOLVER.CLIP_GRADIENTS.ENABLED")) return std::nullopt;
  // The schema bounds CLIP_VALUE and NORM_TYPE and lists the types (src/core/config_schema.cpp).
  return GradientClippingOptions()
      .type(clip_type_from_name(config.get<std::string>("SOLVER.CLIP_GRADIENTS.CLIP_TYPE")))
      .clip_value(config.get<double>("SOLVER.CLIP_GRADIENTS.CLIP_VALUE"))
      .norm_type(config.get<double>("SOLVER.CLIP_GRADIENTS.NORM_TYPE"));
}

}  // namespace largedet::solver
