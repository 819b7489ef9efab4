// Weights I/O (see weights.h).
#include "largedet/modeling/weights.h"

#include <torch/torch.h>

#include <sstream>

#include "largedet/core/error.h"
#include "largedet/tensor/safetensors.h"

namespace largedet::modeling {

std::string LoadReport::str() const {
  std::ostringstream out;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    out << v.size() << " " << what << ":";
    for (size_t i = 0; i < v.size() && i < 20; ++i) out << " " << v[i];
    if (v.size() > 20) out << " ...";
    out << "; ";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mismatched", mismatched);
  return ok() ? "all tensors matched" : out.str();
}

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.value();
  return out;
}

namespace {
bool ignorable(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

LoadReport load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& tensors, bool strict,
                           const std::string& source) {
  LoadReport report;
  auto own = state_dict(module);
  torch::NoGradGuard guard;
  for (auto& [name, dst] : own) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (!ignorable(name)) report.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != dst.sizes()) {
      report.mismatched.push_back(name + ": file " + shape_str(it->second) + " vs model " +
                                  shape_str(dst));
      continue;
    }
    dst.copy_(it->second);
  }
  for (const auto& [name, t] : tensors)
    if (!own.count(name) && !ignorable(name)) report.unexpected.push_back(name);
  if (strict && !report.ok())
    throw Error("weights do not match the model: " + report.str(), source,
                "check MODEL.* (depth, classes, mask head) or load without --strict");
  return report;
}

LoadReport load_weights(torch::nn::Module& module, const std::string& path, bool strict) {
  auto contents = safetensors::load(path);
  return load_state_dict(module, contents.tensors, strict, path);
}

void save_weights(const torch::nn::Module& module, const std::string& path) {
  safetensors::TensorMap map;
  for (auto& [name, t] : state_dict(module)) map[name] = t.detach();
  safetensors::save(path, map, {{"format", "largedet"}});
}

}  // namespace largedet::modeling
