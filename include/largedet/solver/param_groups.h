// Parameter groups from a module, as detectron2's get_default_optimizer_params: normalisation
// parameters and biases get their own weight decay (0 by default) and biases an LR factor; extra
// LR factors apply to parameters whose name starts with a prefix ("backbone." -> 0.1).
#pragma once

#include <torch/nn/module.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace largedet::solver {

struct ParamGroupOptions {
  double weight_decay = 1e-4;
  double weight_decay_norm = 0;
  double weight_decay_bias = 0;
  double bias_lr_factor = 1;
  std::vector<std::pair<std::string, double>> lr_factors;  // name prefix -> factor (first wins)
  // Splits the groups further by part (AGVM's per-part LR, agvm.h); null: one part, -1.
  std::function<int(const torch::Tensor&)> part_of;
};

enum class ParamKind { kWeight, kNorm, kBias };

struct ParamGroup {
  ParamKind kind;
  double weight_decay;
  double lr_factor;
  int part;  // ParamGroupOptions::part_of's value for every parameter here
  std::vector<torch::Tensor> params;
  std::vector<std::string> names;
};

// Trainable parameters only, each exactly once (shared parameters are not duplicated), in
// registration order inside each group.
std::vector<ParamGroup> make_param_groups(const torch::nn::Module& module,
                                          const ParamGroupOptions& options);

}  // namespace largedet::solver
