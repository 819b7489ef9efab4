#include "largedet/solver/lars.h"

#include <torch/optim/serialize.h>

#include "largedet/core/error.h"

namespace largedet::solver {

LarsOptions::LarsOptions(double lr) : lr_(lr) {}

bool operator==(const LarsOptions& a, const LarsOptions& b) {
  return a.lr() == b.lr() && a.momentum() == b.momentum() && a.weight_decay() == b.weight_decay() &&
         a.trust_coefficient() == b.trust_coefficient() && a.eps() == b.eps() &&
         a.adapt() == b.adapt();
}

void LarsOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(trust_coefficient);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(adapt);
}

void LarsOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, trust_coefficient);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, adapt);
}

bool operator==(const LarsParamState& a, const LarsParamState& b) {
  return torch::equal(a.momentum_buffer(), b.momentum_buffer());
}

void LarsParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void LarsParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

Lars::Lars(const std::vector<torch::optim::OptimizerParamGroup>& param_groups, LarsOptions defaults)
    : Optimizer(param_groups, std::make_unique<LarsOptions>(defaults)) {
  for (const auto& group : this->param_groups()) {
    const auto& o = static_cast<const LarsOptions&>(group.options());
    LARGEDET_CHECK(o.lr() >= 0, "LARS: invalid learning rate ", o.lr());
    LARGEDET_CHECK(o.momentum() >= 0, "LARS: momentum must be >= 0");
    LARGEDET_CHECK(o.weight_decay() >= 0, "LARS: weight_decay must be >= 0");
    LARGEDET_CHECK(o.trust_coefficient() > 0, "LARS: trust_coefficient must be > 0");
  }
}

Lars::Lars(std::vector<torch::Tensor> params, LarsOptions defaults)
    : Lars({torch::optim::OptimizerParamGroup(std::move(params))}, defaults) {}

torch::Tensor Lars::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const LarsOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      torch::Tensor update = p.grad();
      if (o.weight_decay() != 0) update = update.add(p, o.weight_decay());
      torch::Tensor scale = torch::full({}, o.lr(), p.options());
      if (o.adapt()) {
        torch::Tensor w_norm = p.norm(), g_norm = p.grad().norm();
        torch::Tensor local =
            o.trust_coefficient() * w_norm / (g_norm + o.weight_decay() * w_norm + o.eps());
        scale =
            scale * at::where((w_norm > 0).logical_and(g_norm > 0), local, torch::ones_like(local));
      }
      update = update * scale;
      auto key = p.unsafeGetTensorImpl();
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto state = std::make_unique<LarsParamState>();
        state->momentum_buffer(update.clone());
        it = state_.emplace(key, std::move(state)).first;
      } else {
        auto& buffer = static_cast<LarsParamState&>(*it->second).momentum_buffer();
        buffer.mul_(o.momentum()).add_(update);
      }
      p.sub_(static_cast<LarsParamState&>(*it->second).momentum_buffer());
    }
  }
  return loss;
}

void Lars::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<LarsParamState, LarsOptions>(archive, *this);
}

void Lars::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<LarsParamState, LarsOptions>(archive, *this);
}

}  // namespace largedet::solver
