// Checkpoints: one safetensors file per checkpoint, DIR/model_<iteration, 7 digits>.safetensors,
// holding the model's tensors, opaque state blobs (optimizer, schedule, scaler, sampler, RNG) as
// U8 tensors under "__state__/<name>", and string metadata (iteration, effective config).
// Written atomically (temporary file, fsync, rename), then DIR/last_checkpoint is updated the same
// way; a crash at any point leaves the previous checkpoint loadable. The last K are kept.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "largedet/core/safetensors.h"

namespace largedet::engine {

struct Checkpoint {
  int64_t iteration = 0;
  safetensors::TensorMap model;
  std::map<std::string, std::string> state;     // name -> bytes
  std::map<std::string, std::string> metadata;  // free-form strings (e.g. "config")
};

class Checkpointer {
 public:
  // keep_last <= 0 keeps every checkpoint.
  Checkpointer(std::string directory, int keep_last);

  // Returns the path written.
  std::string save(const Checkpoint& checkpoint) const;
  // The path named by last_checkpoint, if any.
  std::optional<std::string> last() const;
  static Checkpoint load(const std::string& path);

 private:
  void prune() const;
  std::string directory_;
  int keep_last_;
};

// DIR/model_<iteration, 7 digits>.safetensors.
std::string checkpoint_path(const std::string& directory, int64_t iteration);
// The iteration in a checkpoint's file name (.../model_0001234.safetensors -> 1234).
int64_t iteration_of(const std::string& path);

// The model tensors of a checkpoint or of a plain weights file (modeling::save_weights), without
// the state blobs: what `largedet evaluate --weights` and `largedet infer` load.
safetensors::TensorMap load_model_tensors(const std::string& path);

}  // namespace largedet::engine
