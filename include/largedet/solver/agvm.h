// AGVM, the Adaptive Gradient Variance Modulator (Xue et al., "Large-batch Optimization for Dense
// Visual Predictions", NeurIPS 2022; docs/solver.md, "AGVM"). At large batch the detector's parts
// (backbone, FPN, RPN, box head, mask head) see gradients of very different variance, so one LR
// suits none of them. Every `interval` iterations from `start_iter`, AGVM estimates each part's
// gradient variance from the disagreement of two disjoint halves of the global batch,
//   Phi_i = 1 - cos(g_i^A, g_i^B),
// and moves that part's LR factor towards sqrt(clamp(Phi_backbone / Phi_i, 0.5, 10)) with
// momentum: factor_i <- momentum * factor_i + (1 - momentum) * new_i (factors start at 1; the
// backbone's stays 1). The factors multiply each part's learning rate at every step, which for SGD
// is the paper's gradient rescaling and for the adaptive optimizers (whose steps do not see a
// gradient's scale) what the authors' code does.
#pragma once

#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace largedet::solver {

struct AgvmOptions {
  TORCH_ARG(double, momentum) = 0.97;  // SOLVER.AGVM.MOMENTUM
  TORCH_ARG(int64_t, interval) = 10;   // SOLVER.AGVM.INTERVAL: iterations between estimates
  TORCH_ARG(int64_t, start_iter) = 0;  // the first estimate (0-based iteration)
};

class Agvm {
 public:
  // The parts' names and parameters, the reference part (the backbone) first. A parameter belongs
  // to one part.
  Agvm(std::vector<std::string> names, std::vector<std::vector<torch::Tensor>> params,
       AgvmOptions options = {});

  // Whether iteration `iteration` (0-based) estimates the variances (and so needs the halves).
  bool estimates_at(int64_t iteration) const;
  // The part holding `param`, -1 for none.
  int part_of(const torch::Tensor& param) const;

  // The halves' agreement per part, on the parameters' device with no host read: <a, b>, |a|^2,
  // |b|^2 in double for each part, [3 x parts], from the gradient of half A (`half_a`, one tensor
  // per parameter of params() in order) and of the whole batch (the parameters' .grad), both as
  // means over the same count of forwards so that half B is their difference.
  torch::Tensor agreement(const std::vector<torch::Tensor>& half_a) const;
  // Phi per part from agreement() read to the host (the trainer reads it with the step's losses).
  std::vector<double> variances(const torch::Tensor& agreement_on_host) const;
  // One momentum update of the factors from the parts' variances.
  void update(const std::vector<double>& variances);

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<double>& factors() const { return factors_; }
  // Every parameter of every part, parts in order: the order variances() expects.
  const std::vector<torch::Tensor>& params() const { return flat_; }
  const AgvmOptions& options() const { return options_; }

  // The factors, for checkpoints (exact resume).
  std::string state() const;
  void load_state(const std::string& bytes);

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> flat_;
  std::vector<int> part_;                                // per entry of flat_
  std::unordered_map<const void*, int> part_by_tensor_;  // part_of's index, by TensorImpl
  std::vector<double> factors_;
  AgvmOptions options_;
};

// The rule behind update(), for one part: the target factor for a part of variance `phi` when the
// backbone's is `phi_backbone`.
double agvm_target_factor(double phi_backbone, double phi);

}  // namespace largedet::solver
