// What every command that runs a model does first (train, evaluate --config, infer): the log
// level, the distributed group from the environment (a world of one without a launcher), the
// intra-op threads shared among the node's workers, and the device.
#pragma once

#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "largedet/core/config.h"
#include "largedet/distributed/process_group.h"
#include "largedet/modeling/detector.h"

namespace largedet::engine {

struct Runtime {
  std::shared_ptr<distributed::ProcessGroup> group;
  c10::Device device{c10::kCPU};  // MODEL.DEVICE: cpu, or cuda (this rank's local GPU)
  int rank() const { return group->rank(); }
  int world_size() const { return group->size(); }
};

Runtime setup_runtime(const Config& config);

// The recipe as a run on `world_size` ranks uses it, written back into `config`: detectron2
// dataset names become paths (data::resolve_dataset_names), the architecture's feature keys are
// filled and checked (modeling::resolve_architecture), and batch, LR and schedule are scaled
// (solver::apply_batch_scaling). Returns what changed and why, for the log. Idempotent.
std::vector<std::string> resolve_recipe(Config& config, int world_size);

// The configured detector with the model tensors of `weights` (a checkpoint or a weights file;
// every tensor must match), on `device`, in eval mode.
std::shared_ptr<modeling::DetectorImpl> load_detector(const Config& config,
                                                      const std::string& weights,
                                                      const c10::Device& device);

}  // namespace largedet::engine
