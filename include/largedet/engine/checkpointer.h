// Checkpoints: one safetensors file per checkpoint, DIR/model_<iteration, 7 digits>.safetensors,
// holding the model's tensors, opaque state blobs (optimizer, schedule, scaler, sampler, RNG) as
// U8 tensors under "__state__/<name>", and string metadata (iteration, effective config).
// Written atomically (temporary file, fsync, rename), then DIR/last_checkpoint is updated the same
// way; a crash at any point leaves the previous checkpoint loadable. The last K are kept. Every
// tensor carries a CRC-32 (tensor/safetensors.h), verified on load.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "largedet/tensor/safetensors.h"

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
  // The directory's checkpoint files, newest first.
  std::vector<std::string> list() const;
  // What --resume starts from: the newest checkpoint that loads and whose checksums verify.
  // Each newer one passed over is added to `skipped` as "path: why".
  std::optional<std::string> newest_intact(std::vector<std::string>* skipped) const;
  // Moves the checkpoints, last_checkpoint, model_final.safetensors and metrics.jsonl (which the
  // new run would truncate) into a new subdirectory superseded_<UTC time>/, so that a run started
  // over them loses nothing; returns its path.
  std::string set_aside() const;
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
