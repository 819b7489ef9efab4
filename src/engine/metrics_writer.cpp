#include "largedet/engine/metrics_writer.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::engine {

MetricsWriter::MetricsWriter(const std::string& directory, bool tensorboard)
    : jsonl_path_(directory + "/metrics.jsonl"), jsonl_(jsonl_path_, std::ios::app) {
  if (!jsonl_) throw Error("cannot open metrics file", jsonl_path_, "check the output directory");
  if (tensorboard) events_ = std::make_unique<EventWriter>(directory);
}

void MetricsWriter::drop_after(const std::string& directory, int64_t iteration) {
  const std::string path = directory + "/metrics.jsonl";
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object() && parsed.value("iteration", int64_t{0}) > iteration) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) write_file_atomic(path, kept);
}

void MetricsWriter::write(int64_t iteration, const std::map<std::string, double>& scalars) {
  nlohmann::json line;
  line["iteration"] = iteration;
  for (const auto& [name, value] : scalars) {
    // JSON has no NaN/Inf: write null so that readers see a hole, not a parse error.
    line[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
    if (events_) events_->add_scalar(name, value, iteration);
  }
  jsonl_ << line.dump() << "\n" << std::flush;
  if (events_) events_->flush();
}

}  // namespace largedet::engine
