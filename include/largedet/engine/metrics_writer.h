// Training metrics per log period: one JSON object per line in DIR/metrics.jsonl and the same
// scalars in a TensorBoard event file. Rank 0 writes; other ranks create no files.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "largedet/engine/event_writer.h"

namespace largedet::engine {

class MetricsWriter {
 public:
  MetricsWriter(const std::string& directory, bool tensorboard = true);
  // `scalars` holds every value of the period (lr, each loss, total_loss, data_time, ...).
  void write(int64_t iteration, const std::map<std::string, double>& scalars);
  const std::string& jsonl_path() const { return jsonl_path_; }
  // Removes DIR/metrics.jsonl's lines past `iteration` (a resumed run redoes them).
  static void drop_after(const std::string& directory, int64_t iteration);

 private:
  std::string jsonl_path_;
  std::ofstream jsonl_;
  std::unique_ptr<EventWriter> events_;
};

}  // namespace largedet::engine
