#include "sweep/record.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::tools::sweep {
namespace {

constexpr const char* kStatusNames[] = {"running", "done", "diverged", "failed", "stopped"};

Status parse_status(const std::string& name, const std::string& where) {
  for (size_t i = 0; i < std::size(kStatusNames); ++i)
    if (name == kStatusNames[i]) return static_cast<Status>(i);
  throw Error("unknown cell status \"" + name + "\"", where,
              "one of running, done, diverged, failed, stopped");
}

}  // namespace

std::string status_name(Status status) { return kStatusNames[static_cast<size_t>(status)]; }

bool is_final(Status status) { return status == Status::kDone || status == Status::kDiverged; }

std::string record_path(const std::string& cell_dir) { return cell_dir + "/sweep.json"; }

std::optional<CellRecord> read_record(const std::string& cell_dir) {
  const std::string path = record_path(cell_dir);
  if (!std::filesystem::is_regular_file(path)) return std::nullopt;
  const auto json = nlohmann::json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
  if (!json.is_object())
    throw Error("not a JSON object", path, "delete it to let the sweep rerun the cell");
  try {
    CellRecord record;
    record.cell = json.at("cell").get<std::string>();
    record.overrides = json.at("overrides").get<std::vector<std::string>>();
    record.fixed = json.at("fixed").get<std::vector<std::string>>();
    record.base = json.at("base").get<std::string>();
    record.max_iter = json.at("max_iter").get<int64_t>();
    record.status = parse_status(json.at("status").get<std::string>(), path);
    record.reason = json.value("reason", "");
    record.wall_seconds = json.at("wall_seconds").get<double>();
    record.attempts = json.at("attempts").get<int>();
    return record;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("not a sweep record: ") + e.what(), path,
                "delete it to let the sweep rerun the cell");
  }
}

void write_record(const std::string& cell_dir, const CellRecord& record) {
  nlohmann::json json;
  json["cell"] = record.cell;
  json["overrides"] = record.overrides;
  json["fixed"] = record.fixed;
  json["base"] = record.base;
  json["max_iter"] = record.max_iter;
  json["status"] = status_name(record.status);
  if (!record.reason.empty()) json["reason"] = record.reason;
  json["wall_seconds"] = record.wall_seconds;
  json["attempts"] = record.attempts;
  write_file_atomic(record_path(cell_dir), json.dump(2) + "\n");
}

}  // namespace largedet::tools::sweep
