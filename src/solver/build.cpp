#include "largedet/solver/build.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/solver/lamb.h"
#include "largedet/solver/lars.h"

namespace largedet::solver {
namespace {

std::string where(const Config& config, const std::string& key) {
  return key + " (" + config.source(key) + ")";
}

template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> torch_groups(const std::vector<ParamGroup>& groups,
                                                            const Options& base, double base_lr) {
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (const auto& group : groups) {
    auto options = std::make_unique<Options>(base);
    options->weight_decay(group.weight_decay);
    options->lr(base_lr * group.lr_factor);
    out.emplace_back(group.params, std::move(options));
  }
  return out;
}

}  // namespace

ParamGroupOptions param_group_options_from_config(const Config& config) {
  ParamGroupOptions o;
  o.weight_decay = config.get<double>("SOLVER.WEIGHT_DECAY");
  o.weight_decay_norm = config.get<double>("SOLVER.WEIGHT_DECAY_NORM");
  // null (the default): biases decay as the weights do, as in detectron2.
  o.weight_decay_bias = config.is_null("SOLVER.WEIGHT_DECAY_BIAS")
                            ? o.weight_decay
                            : config.get<double>("SOLVER.WEIGHT_DECAY_BIAS");
  o.bias_lr_factor = config.get<double>("SOLVER.BIAS_LR_FACTOR");
  return o;
}

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const Config& config,
                                                         const torch::nn::Module& model) {
  return build_optimizer(config, make_param_groups(model, param_group_options_from_config(config)));
}

std::unique_ptr<torch::optim::Optimizer> build_optimizer(const Config& config,
                                                         const std::vector<ParamGroup>& groups) {
  LARGEDET_CHECK(!groups.empty(), "the model has no trainable parameters to optimize");
  const std::string name = config.get<std::string>("SOLVER.OPTIMIZER");
  const double lr = config.get<double>("SOLVER.BASE_LR");
  const auto betas = config.get<std::vector<double>>("SOLVER.BETAS");
  if (betas.size() != 2)
    throw Error("SOLVER.BETAS needs two values [beta1, beta2]", where(config, "SOLVER.BETAS"));
  if (name == "sgd") {
    auto base = torch::optim::SGDOptions(lr)
                    .momentum(config.get<double>("SOLVER.MOMENTUM"))
                    .nesterov(config.get<bool>("SOLVER.NESTEROV"));
    return std::make_unique<torch::optim::SGD>(torch_groups(groups, base, lr), base);
  }
  if (name == "adamw") {
    auto base = torch::optim::AdamWOptions(lr)
                    .betas({betas[0], betas[1]})
                    .eps(config.get<double>("SOLVER.EPS"));
    return std::make_unique<torch::optim::AdamW>(torch_groups(groups, base, lr), base);
  }
  if (name == "lars") {
    auto base = LarsOptions(lr)
                    .momentum(config.get<double>("SOLVER.MOMENTUM"))
                    .trust_coefficient(config.get<double>("SOLVER.LARS.TRUST_COEFFICIENT"))
                    .eps(config.get<double>("SOLVER.LARS.EPS"));
    auto param_groups = torch_groups(groups, base, lr);
    // LARS practice: biases and normalisation parameters take plain momentum SGD steps.
    for (size_t i = 0; i < groups.size(); ++i)
      static_cast<LarsOptions&>(param_groups[i].options())
          .adapt(groups[i].kind == ParamKind::kWeight);
    return std::make_unique<Lars>(param_groups, base);
  }
  if (name == "lamb" || name == "pmd_lamb") {
    // The schema allows only the values handled here (src/core/config_schema.cpp).
    const std::string shape = config.get<std::string>("SOLVER.LAMB.DECAY_SHAPE");
    const std::string bias = config.get<std::string>("SOLVER.LAMB.BIAS_CORRECTION");
    auto base =
        LambOptions(lr)
            .beta1(betas[0])
            .beta2(betas[1])
            .eps(config.get<double>("SOLVER.EPS"))
            .decay_period(name == "lamb" ? 0 : config.get<int64_t>("SOLVER.LAMB.DECAY_PERIOD"))
            .decay_shape(shape == "linear" ? DecayShape::kLinear : DecayShape::kCosine)
            .decay_second_moment(config.get<bool>("SOLVER.LAMB.DECAY_SECOND_MOMENT"))
            .bias_correction(bias == "normalized" ? BiasCorrection::kNormalized
                             : bias == "global"   ? BiasCorrection::kGlobal
                                                  : BiasCorrection::kNone)
            .trust_clip(config.get<double>("SOLVER.LAMB.TRUST_CLIP"));
    return std::make_unique<Lamb>(torch_groups(groups, base, lr), base);
  }
  // The schema's SOLVER.OPTIMIZER choices and the branches above must list the same names.
  throw Error("SOLVER.OPTIMIZER '" + name + "' has no builder", where(config, "SOLVER.OPTIMIZER"));
}

LRScheduler build_lr_scheduler(const Config& config, torch::optim::Optimizer& optimizer) {
  return LRScheduler(optimizer, LRSchedule::from_config(config));
}

}  // namespace largedet::solver
