// DIR/<cell>/sweep.json: what the sweep knows of a cell that metrics.jsonl does not say (its
// overrides, its target iteration, how it ended, its wall time over every attempt). Written by
// rank 0 when the cell starts and when it ends; copied into the archive with the metrics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace largedet::tools::sweep {

enum class Status {
  kRunning,   // started, not ended (or the sweep was killed)
  kDone,      // trained to max_iter
  kDiverged,  // the NaN guard stopped it, or its final loss is above its first
  kFailed,    // train exited with another error: rerun resumes it
  kStopped,   // a signal stopped it with a checkpoint: rerun resumes it
};

std::string status_name(Status status);
// A finished cell is skipped by the sweep: done or diverged.
bool is_final(Status status);

struct CellRecord {
  std::string cell;
  std::vector<std::string> overrides;  // grid coordinates
  std::vector<std::string> fixed;
  std::string base;      // the base recipe, as given
  int64_t max_iter = 0;  // SOLVER.MAX_ITER of the resolved recipe
  Status status = Status::kRunning;
  std::string reason;       // why it diverged or failed
  double wall_seconds = 0;  // over all attempts
  int attempts = 0;
};

// The path of a cell's record.
std::string record_path(const std::string& cell_dir);
// nullopt when the directory has no sweep.json; throws largedet::Error naming the file when it
// is not a record.
std::optional<CellRecord> read_record(const std::string& cell_dir);
// Written atomically.
void write_record(const std::string& cell_dir, const CellRecord& record);

}  // namespace largedet::tools::sweep
