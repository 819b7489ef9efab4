// Gradient clipping for every optimizer, with detectron2's keys (SOLVER.CLIP_GRADIENTS.*,
// docs/solver.md "Gradient clipping"):
//   value       each gradient element clamped to [-CLIP_VALUE, CLIP_VALUE]
//   norm        each parameter's gradient scaled so its NORM_TYPE-norm is at most CLIP_VALUE
//   full_model  all gradients scaled together so their joint norm is at most CLIP_VALUE
//               (torch.nn.utils.clip_grad_norm_, the DETR family's "full_model")
// The norms are scaled by min(1, CLIP_VALUE / (norm + 1e-6)), torch's rule. Everything stays on
// the gradients' device: no host read, whatever the number of tensors, so that a GPU step is not
// drained by it. The trainer clips after unscaling and the gradient allreduce, before the step.
#pragma once

#include <ATen/Tensor.h>
#include <torch/arg.h>

#include <optional>
#include <string>
#include <vector>

namespace largedet {
class Config;
}

namespace largedet::solver {

enum class ClipType { kValue, kNorm, kFullModel };

ClipType clip_type_from_name(const std::string& name);  // value | norm | full_model

struct GradientClippingOptions {
  TORCH_ARG(ClipType, type) = ClipType::kValue;
  TORCH_ARG(double, clip_value) = 1.0;
  // p of the p-norm (norm and full_model); infinity: the largest absolute value.
  TORCH_ARG(double, norm_type) = 2.0;
};

// Clips `grads` in place (undefined entries are skipped). Throws largedet::Error for a
// clip_value <= 0 or a norm_type <= 0.
void clip_gradients(const std::vector<at::Tensor>& grads, const GradientClippingOptions& options);

// SOLVER.CLIP_GRADIENTS.{ENABLED, CLIP_TYPE, CLIP_VALUE, NORM_TYPE}; nullopt when not enabled.
std::optional<GradientClippingOptions> gradient_clipping_from_config(const Config& config);

}  // namespace largedet::solver
