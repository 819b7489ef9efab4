// LAMB and PMD-LAMB (LAMB whose moment estimates decay periodically), exactly as docs/solver.md
// defines them. Per parameter tensor w with gradient g at step t = 1, 2, ...:
//   tau = (t - 1) mod T,  d_t = 1 - tau / (T - 1)  (linear)  or  (1 + cos(pi tau / (T - 1))) / 2
//   m_t = beta1 d_t m_{t-1} + (1 - beta1) g,   v_t = beta2 d_t v_{t-1} + (1 - beta2) g^2
//   S1_t = beta1 d_t S1_{t-1} + (1 - beta1)    (S2 likewise), the exact bias normaliser
//   u = (m_t / S1_t) / (sqrt(v_t / S2_t) + eps) + weight_decay w
//   r = ||w|| / ||u|| (1 when either is 0, optionally clipped), w <- w - lr r u
// decay_period 0 or 1 is plain LAMB. On CPU float32 tensors a fused kernel makes two passes per
// tensor; CUDA float32 tensors, all of a step together, take three kernel launches per device
// whatever their number; other tensors take a composition of ATen ops. None syncs with the host.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <vector>

namespace largedet::solver {

enum class DecayShape { kLinear, kCosine };
enum class BiasCorrection { kNormalized, kGlobal, kNone };

struct LambOptions : public torch::optim::OptimizerCloneableOptions<LambOptions> {
  LambOptions(double lr = 1e-3);
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(double, weight_decay) = 0;
  // Period T of the moment decay in steps; 0 or 1 disables it (plain LAMB).
  TORCH_ARG(int64_t, decay_period) = 0;
  TORCH_ARG(DecayShape, decay_shape) = DecayShape::kLinear;
  // When false only the first moment decays.
  TORCH_ARG(bool, decay_second_moment) = true;
  TORCH_ARG(BiasCorrection, bias_correction) = BiasCorrection::kNormalized;
  // Upper bound of the trust ratio r; 0 = none.
  TORCH_ARG(double, trust_clip) = 0;
  // false drops the layer-wise trust ratio (r = 1): Adam with the chosen moment decay, for
  // ablations.
  TORCH_ARG(bool, trust_ratio) = true;
  // false forces the composition of ATen ops on every device (the benchmark's naive baseline).
  TORCH_ARG(bool, fused) = true;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const LambOptions& a, const LambOptions& b);
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
};

struct LambParamState : public torch::optim::OptimizerCloneableParamState<LambParamState> {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);
  // The bias normalisers S1_t and S2_t (double: they are scalars and must resume exactly).
  TORCH_ARG(double, first_normalizer) = 0;
  TORCH_ARG(double, second_normalizer) = 0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  friend bool operator==(const LambParamState& a, const LambParamState& b);
};

class Lamb : public torch::optim::Optimizer {
 public:
  explicit Lamb(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                LambOptions defaults = {});
  explicit Lamb(std::vector<torch::Tensor> params, LambOptions defaults = {});

  torch::Tensor step(LossClosure closure = nullptr) override;
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  void check_options(const LambOptions& options) const;
};

// The moment decay coefficient d_t for step t >= 1 (1 when the period is 0 or 1).
double moment_decay(int64_t step, int64_t period, DecayShape shape);

}  // namespace largedet::solver
