// LARS (You et al., 2017): momentum SGD with a layer-wise trust ratio.
//   local_lr = trust_coefficient ||w|| / (||g|| + weight_decay ||w|| + eps)   (1 if a norm is 0)
//   buf = momentum buf + lr local_lr (g + weight_decay w),   w <- w - buf
// Groups with `adapt(false)` (biases, norms) take plain momentum SGD steps.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <vector>

namespace largedet::solver {

struct LarsOptions : public torch::optim::OptimizerCloneableOptions<LarsOptions> {
  LarsOptions(double lr = 0.1);
  TORCH_ARG(double, lr) = 0.1;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, trust_coefficient) = 0.001;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(bool, adapt) = true;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const LarsOptions& a, const LarsOptions& b);
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

struct LarsParamState : public torch::optim::OptimizerCloneableParamState<LarsParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const LarsParamState& a, const LarsParamState& b);
};

class Lars : public torch::optim::Optimizer {
 public:
  explicit Lars(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                LarsOptions defaults = {});
  explicit Lars(std::vector<torch::Tensor> params, LarsOptions defaults = {});

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace largedet::solver
