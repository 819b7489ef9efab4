// Weights in safetensors with torchvision's parameter names: a converted torchvision state_dict
// (tools/convert_torchvision.py) loads as is.
#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

namespace largedet::modeling {

struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the model
  std::vector<std::string> mismatched;  // "name: file [..] vs model [..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

// Every parameter and buffer by dotted name.
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);
// Copies matching tensors; BatchNorm's num_batches_tracked missing from or unexpected in a file
// is ignored (FrozenBN has none). strict: anything left in the report throws largedet::Error.
LoadReport load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& tensors, bool strict,
                           const std::string& source = "state dict");
LoadReport load_weights(torch::nn::Module& module, const std::string& path, bool strict = false);
void save_weights(const torch::nn::Module& module, const std::string& path);

}  // namespace largedet::modeling
