// Optimizers built by name from config: SOLVER.OPTIMIZER = sgd | adamw | lars | lamb | pmd_lamb.
// lamb is PMD-LAMB with decay_period 0; pmd_lamb takes SOLVER.LAMB.DECAY_PERIOD (T = 200 in the
// paper's figure). Group learning rates start at SOLVER.BASE_LR times the group's factor; an
// LRScheduler from build_lr_scheduler() then applies the scaling rule, warmup and decay.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>

#include "largedet/solver/lr_schedule.h"
#include "largedet/solver/param_groups.h"

namespace largedet {
class Config;
}

namespace largedet::solver {

ParamGroupOptions param_group_options_from_config(const Config& config);
std::unique_ptr<torch::optim::Optimizer> build_optimizer(const Config& config,
                                                         const torch::nn::Module& model);
std::unique_ptr<torch::optim::Optimizer> build_optimizer(const Config& config,
                                                         const std::vector<ParamGroup>& groups);
LRScheduler build_lr_scheduler(const Config& config, torch::optim::Optimizer& optimizer);

}  // namespace largedet::solver
