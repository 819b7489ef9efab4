#include "largedet/solver/lamb.h"

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/serialize.h>

#include <cmath>

#include "lamb_kernels.h"
#include "largedet/core/error.h"

namespace largedet::solver {

LambOptions::LambOptions(double lr) : lr_(lr) {}

bool operator==(const LambOptions& a, const LambOptions& b) {
  return a.lr() == b.lr() && a.beta1() == b.beta1() && a.beta2() == b.beta2() &&
         a.eps() == b.eps() && a.weight_decay() == b.weight_decay() &&
         a.decay_period() == b.decay_period() && a.decay_shape() == b.decay_shape() &&
         a.decay_second_moment() == b.decay_second_moment() &&
         a.bias_correction() == b.bias_correction() && a.trust_clip() == b.trust_clip() &&
         a.trust_ratio() == b.trust_ratio() && a.fused() == b.fused();
}

void LambOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta1);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(beta2);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(decay_period);
  archive.write("decay_shape", c10::IValue(static_cast<int64_t>(decay_shape())));
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(decay_second_moment);
  archive.write("bias_correction", c10::IValue(static_cast<int64_t>(bias_correction())));
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(trust_clip);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(trust_ratio);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(fused);
}

void LambOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta1);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, beta2);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, decay_period);
  c10::IValue value;
  archive.read("decay_shape", value);
  decay_shape(static_cast<DecayShape>(value.toInt()));
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, decay_second_moment);
  archive.read("bias_correction", value);
  bias_correction(static_cast<BiasCorrection>(value.toInt()));
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, trust_clip);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, trust_ratio);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, fused);
}

bool operator==(const LambParamState& a, const LambParamState& b) {
  return a.step() == b.step() && torch::equal(a.exp_avg(), b.exp_avg()) &&
         torch::equal(a.exp_avg_sq(), b.exp_avg_sq()) &&
         a.first_normalizer() == b.first_normalizer() &&
         a.second_normalizer() == b.second_normalizer();
}

void LambParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(first_normalizer);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(second_normalizer);
}

void LambParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, first_normalizer);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, second_normalizer);
}

double moment_decay(int64_t step, int64_t period, DecayShape shape) {
  if (period <= 1) return 1.0;
  const double tau = static_cast<double>((step - 1) % period);
  const double progress = tau / static_cast<double>(period - 1);
  return shape == DecayShape::kLinear ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
}

Lamb::Lamb(const std::vector<torch::optim::OptimizerParamGroup>& param_groups, LambOptions defaults)
    : Optimizer(param_groups, std::make_unique<LambOptions>(defaults)) {
  check_options(defaults);
  for (const auto& group : this->param_groups())
    check_options(static_cast<const LambOptions&>(group.options()));
}

Lamb::Lamb(std::vector<torch::Tensor> params, LambOptions defaults)
    : Lamb({torch::optim::OptimizerParamGroup(std::move(params))}, defaults) {}

void Lamb::check_options(const LambOptions& o) const {
  LARGEDET_CHECK(o.lr() >= 0, "LAMB: invalid learning rate ", o.lr(), " (must be >= 0)");
  LARGEDET_CHECK(o.beta1() >= 0 && o.beta1() < 1, "LAMB: beta1 ", o.beta1(), " must be in [0, 1)");
  LARGEDET_CHECK(o.beta2() >= 0 && o.beta2() < 1, "LAMB: beta2 ", o.beta2(), " must be in [0, 1)");
  LARGEDET_CHECK(o.eps() >= 0, "LAMB: eps ", o.eps(), " must be >= 0");
  LARGEDET_CHECK(o.weight_decay() >= 0, "LAMB: weight_decay ", o.weight_decay(), " must be >= 0");
  LARGEDET_CHECK(o.decay_period() >= 0, "LAMB: decay_period ", o.decay_period(),
                 " must be >= 0 (0 = plain LAMB)");
  LARGEDET_CHECK(o.trust_clip() >= 0, "LAMB: trust_clip must be >= 0 (0 = none)");
}

torch::Tensor Lamb::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  // Every group's CUDA float32 tensors go to the multi-tensor kernel together, after the loop.
  std::vector<detail::LambUpdate> on_cuda;
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const LambOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto& grad = p.grad();
      LARGEDET_CHECK(!grad.is_sparse(), "LAMB does not support sparse gradients");
      auto key = p.unsafeGetTensorImpl();
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto state = std::make_unique<LambParamState>();
        state->exp_avg(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        state->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<LambParamState&>(*it->second);
      const int64_t t = state.step() + 1;
      state.step(t);
      const double d1 = moment_decay(t, options.decay_period(), options.decay_shape());
      const double d2 = options.decay_second_moment() ? d1 : 1.0;
      const double a1 = options.beta1() * d1, a2 = options.beta2() * d2;
      state.first_normalizer(a1 * state.first_normalizer() + (1 - options.beta1()));
      state.second_normalizer(a2 * state.second_normalizer() + (1 - options.beta2()));
      double c1 = 1, c2 = 1;
      if (options.bias_correction() == BiasCorrection::kNormalized) {
        c1 = state.first_normalizer();
        c2 = state.second_normalizer();
      } else if (options.bias_correction() == BiasCorrection::kGlobal) {
        c1 = 1 - std::pow(options.beta1(), static_cast<double>(t));
        c2 = 1 - std::pow(options.beta2(), static_cast<double>(t));
      }
      detail::LambCoefficients c{a1,
                                 1 - options.beta1(),
                                 a2,
                                 1 - options.beta2(),
                                 1 / c1,
                                 1 / c2,
                                 options.eps(),
                                 options.weight_decay(),
                                 options.lr(),
                                 options.trust_clip(),
                                 options.trust_ratio()};
      torch::Tensor& m = state.exp_avg();
      torch::Tensor& v = state.exp_avg_sq();
      torch::Tensor w = p;
      if (options.fused() && detail::multi_tensor_lamb_applies(p, grad, m, v)) {
        on_cuda.push_back({w, grad, m, v, c});
      } else if (options.fused() && detail::fused_lamb_applies(p, grad, m, v)) {
        detail::fused_lamb_update(w, grad, m, v, c);
      } else {
        detail::aten_lamb_update(w, grad.contiguous(), m, v, c);
      }
    }
  }
  detail::multi_tensor_lamb_update(on_cuda);
  return loss;
}

void Lamb::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<LambParamState, LambOptions>(archive, *this);
}

void Lamb::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<LambParamState, LambOptions>(archive, *this);
}

}  // namespace largedet::solver
