#include "largedet/solver/param_groups.h"

#include <algorithm>
#include <set>

namespace largedet::solver {
namespace {
bool is_norm_module(const torch::nn::Module& module) {
  // Covers torch's BatchNorm/GroupNorm/LayerNorm/InstanceNorm and LargeDet's SyncBN/FrozenBN.
  return module.name().find("Norm") != std::string::npos;
}
}  // namespace

std::vector<ParamGroup> make_param_groups(const torch::nn::Module& module,
                                          const ParamGroupOptions& options) {
  std::vector<ParamGroup> groups;
  std::set<const void*> seen;
  auto visit = [&](const std::string& prefix, const torch::nn::Module& owner) {
    const bool norm = is_norm_module(owner);
    for (const auto& param : owner.named_parameters(/*recurse=*/false)) {
      const torch::Tensor& tensor = param.value();
      if (!tensor.requires_grad() || !seen.insert(tensor.unsafeGetTensorImpl()).second) continue;
      std::string name = prefix.empty() ? param.key() : prefix + "." + param.key();
      ParamKind kind =
          norm ? ParamKind::kNorm : (param.key() == "bias" ? ParamKind::kBias : ParamKind::kWeight);
      double decay = kind == ParamKind::kNorm   ? options.weight_decay_norm
                     : kind == ParamKind::kBias ? options.weight_decay_bias
                                                : options.weight_decay;
      double lr_factor = kind == ParamKind::kBias ? options.bias_lr_factor : 1.0;
      for (const auto& [prefix, factor] : options.lr_factors) {
        if (name.compare(0, prefix.size(), prefix) == 0) {
          lr_factor *= factor;
          break;
        }
      }
      const int part = options.part_of ? options.part_of(tensor) : -1;
      auto group = std::find_if(groups.begin(), groups.end(), [&](const ParamGroup& g) {
        return g.kind == kind && g.weight_decay == decay && g.lr_factor == lr_factor &&
               g.part == part;
      });
      if (group == groups.end())
        group = groups.insert(groups.end(), {kind, decay, lr_factor, part, {}, {}});
      group->params.push_back(tensor);
      group->names.push_back(std::move(name));
    }
  };
  // The root is visited apart: named_modules() can only include it for modules held by shared_ptr.
  visit("", module);
  for (const auto& item : module.named_modules("", /*include_self=*/false))
    visit(item.key(), *item.value());
  return groups;
}

}  // namespace largedet::solver
