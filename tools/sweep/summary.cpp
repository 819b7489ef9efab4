#include "sweep/summary.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::tools::sweep {
namespace {

using Points = std::vector<std::pair<double, double>>;

const Points* series(const RunCurves& run, const std::string& key) {
  const auto it = run.series.find(key);
  return it == run.series.end() || it->second.empty() ? nullptr : &it->second;
}

std::optional<double> last_value(const RunCurves& run, const std::string& key) {
  const Points* points = series(run, key);
  return points ? std::optional<double>(points->back().second) : std::nullopt;
}

void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node)
      flatten(entry.second, (prefix.empty() ? "" : prefix + ".") + entry.first.as<std::string>(),
              out);
  } else if (node.IsScalar()) {
    out[prefix] = node.as<std::string>();
  } else {
    YAML::Emitter emitter;
    emitter << YAML::Flow << node;
    out[prefix] = emitter.c_str();
  }
}

std::map<std::string, std::string> settings_of(const std::string& cell_dir,
                                               const CellRecord& record) {
  std::map<std::string, std::string> settings;
  const std::string config = cell_dir + "/config.yaml";
  if (std::filesystem::is_regular_file(config)) {
    try {
      flatten(YAML::LoadFile(config), "", settings);
    } catch (const YAML::Exception& e) {
      throw Error(std::string("cannot read the cell's configuration: ") + e.what(), config,
                  "delete it; the next sweep writes it again");
    }
  }
  for (const auto* list : {&record.overrides, &record.fixed}) {
    for (const auto& o : *list) {
      const auto equals = o.find('=');
      settings[o.substr(0, equals)] = o.substr(equals + 1);
    }
  }
  return settings;
}

std::string number(const std::optional<double>& value, const char* format) {
  if (!value) return "";
  char text[32];
  std::snprintf(text, sizeof text, format, *value);
  return text;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string markdown_field(const std::string& text) {
  std::string escaped;
  for (const char c : text)
    escaped += c == '|' ? std::string("\\|") : c == '\n' ? std::string("<br>") : std::string(1, c);
  return escaped.empty() ? "–" : escaped;
}

std::string table_row(const std::vector<std::string>& fields,
                      std::string (*format)(const std::string&), const char* separator,
                      const char* open, const char* close) {
  std::string line = open;
  for (size_t i = 0; i < fields.size(); ++i) line += (i ? separator : "") + format(fields[i]);
  return line + close;
}

std::vector<std::string> override_keys(const std::vector<CellSummary>& cells) {
  std::vector<std::string> keys;
  for (const auto& cell : cells) {
    for (const auto* list : {&cell.record.overrides, &cell.record.fixed}) {
      for (const auto& o : *list) {
        const std::string key = o.substr(0, o.find('='));
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
      }
    }
  }
  return keys;
}

std::string override_value(const CellRecord& record, const std::string& key) {
  for (const auto* list : {&record.overrides, &record.fixed})
    for (const auto& o : *list)
      if (o.compare(0, key.size() + 1, key + "=") == 0) return o.substr(key.size() + 1);
  return "";
}

// A cell's final bbox/AP is compared with the best at its batch divided by this.
constexpr double kCollapseFactor = 10;

bool finite(const std::optional<double>& value) { return !value || std::isfinite(*value); }

// SOLVER.IMS_PER_BATCH of a cell as a number; nullopt when it has none or it is not a number.
std::optional<double> batch_of(const CellSummary& cell) {
  const auto text = cell.setting("SOLVER.IMS_PER_BATCH");
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  const double batch = std::strtod(text->c_str(), &end);
  return *end == '\0' && std::isfinite(batch) ? std::optional<double>(batch) : std::nullopt;
}

}  // namespace

std::string CellSummary::status() const {
  return collapsed() ? "collapsed" : status_name(record.status);
}

std::optional<std::string> CellSummary::setting(const std::string& key) const {
  const auto it = settings.find(key);
  return it == settings.end() ? std::nullopt : std::optional<std::string>(it->second);
}

void mark_collapsed(std::vector<CellSummary>& cells) {
  // The best final bbox/AP at each batch, and the cell that has it.
  std::map<double, const CellSummary*> best;
  for (const auto& cell : cells) {
    const auto batch = batch_of(cell);
    if (!batch || !cell.metrics.ap || !std::isfinite(*cell.metrics.ap)) continue;
    const CellSummary*& at_batch = best[*batch];
    if (!at_batch || *cell.metrics.ap > *at_batch->metrics.ap) at_batch = &cell;
  }
  std::vector<std::optional<std::string>> collapse(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    const CellSummary& cell = cells[i];
    const CellMetrics& m = cell.metrics;
    const auto batch = batch_of(cell);
    if (cell.record.status != Status::kDone || !batch || !m.ap || !std::isfinite(*m.ap) ||
        !finite(m.first_loss) || !finite(m.final_loss))
      continue;
    const CellSummary& top = *best.at(*batch);
    const double best_ap = *top.metrics.ap;
    if (!(best_ap > 0) || !(*m.ap < best_ap / kCollapseFactor)) continue;
    collapse[i] = "final bbox/AP " + number(m.ap, "%.4f") + " is under a tenth of " +
                  number(best_ap, "%.4f") + " (the best at SOLVER.IMS_PER_BATCH " +
                  *cell.setting("SOLVER.IMS_PER_BATCH") + ": " + top.name + ")";
  }
  for (size_t i = 0; i < cells.size(); ++i) cells[i].collapse = std::move(collapse[i]);
}

CellMetrics cell_metrics(const RunCurves& run) {
  CellMetrics metrics;
  for (const auto& [key, points] : run.series)
    if (!points.empty())
      metrics.iterations = std::max(metrics.iterations, static_cast<int64_t>(points.back().first));
  if (const Points* loss = series(run, "total_loss")) {
    metrics.first_loss = loss->front().second;
    metrics.final_loss = loss->back().second;
  }
  metrics.ap = last_value(run, "bbox/AP");
  metrics.ap50 = last_value(run, "bbox/AP50");
  metrics.ap75 = last_value(run, "bbox/AP75");
  if (const Points* ap = series(run, "bbox/AP")) {
    metrics.best_ap = std::max_element(ap->begin(), ap->end(), [](const auto& a, const auto& b) {
                        return a.second < b.second;
                      })->second;
  }
  return metrics;
}

CellMetrics metrics_of(const std::string& run_dir) {
  return std::filesystem::is_regular_file(run_dir + "/metrics.jsonl")
             ? cell_metrics(read_run(run_dir))
             : CellMetrics{};
}

std::optional<std::string> loss_divergence(const CellMetrics& metrics) {
  if (!metrics.first_loss || !metrics.final_loss || !(*metrics.final_loss > *metrics.first_loss))
    return std::nullopt;
  std::ostringstream reason;
  reason << "total_loss rose from " << *metrics.first_loss << " to " << *metrics.final_loss;
  return reason.str();
}

std::vector<CellSummary> read_sweep(const std::string& dir) {
  if (!is_directory(dir))
    throw Error("not a directory", dir, "pass the --output directory of `largedet sweep`");
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_directory() && read_record(entry.path().string()))
      names.push_back(entry.path().filename().string());
  if (names.empty())
    throw Error("no sweep cells (subdirectories with a sweep.json)", dir,
                "pass the --output or --archive directory of `largedet sweep`");
  std::sort(names.begin(), names.end());
  std::vector<CellSummary> cells;
  for (const auto& name : names) {
    const std::string cell_dir = dir + "/" + name;
    CellSummary cell;
    cell.name = name;
    cell.record = *read_record(cell_dir);
    cell.metrics = metrics_of(cell_dir);
    cell.settings = settings_of(cell_dir, cell.record);
    cells.push_back(std::move(cell));
  }
  mark_collapsed(cells);
  return cells;
}

SummaryTables summary_tables(const std::vector<CellSummary>& cells) {
  const auto keys = override_keys(cells);
  std::vector<std::string> header = {"cell"};
  header.insert(header.end(), keys.begin(), keys.end());
  for (const char* column :
       {"status", "diverged", "iterations", "max_iter", "final_loss", "bbox/AP", "bbox/AP50",
        "bbox/AP75", "best_bbox/AP", "wall_s", "reason"})
    header.push_back(column);
  std::vector<std::vector<std::string>> rows;
  for (const auto& cell : cells) {
    std::vector<std::string> row = {cell.name};
    for (const auto& key : keys) row.push_back(override_value(cell.record, key));
    const CellMetrics& m = cell.metrics;
    row.insert(
        row.end(),
        {cell.status(), cell.diverged() ? "yes" : "no", std::to_string(m.iterations),
         std::to_string(cell.record.max_iter), number(m.final_loss, "%.4g"), number(m.ap, "%.4f"),
         number(m.ap50, "%.4f"), number(m.ap75, "%.4f"), number(m.best_ap, "%.4f"),
         number(cell.record.wall_seconds, "%.0f"), cell.collapse.value_or(cell.record.reason)});
    rows.push_back(std::move(row));
  }
  SummaryTables tables;
  tables.csv = table_row(header, csv_field, ",", "", "\n");
  tables.markdown = table_row(header, markdown_field, " | ", "| ", " |\n") + "|";
  for (size_t i = 0; i < header.size(); ++i) tables.markdown += "---|";
  tables.markdown += "\n";
  for (const auto& row : rows) {
    tables.csv += table_row(row, csv_field, ",", "", "\n");
    tables.markdown += table_row(row, markdown_field, " | ", "| ", " |\n");
  }
  return tables;
}

std::vector<CellSummary> write_summary(const std::string& dir) {
  auto cells = read_sweep(dir);
  const auto tables = summary_tables(cells);
  write_file_atomic(dir + "/summary.md", tables.markdown);
  write_file_atomic(dir + "/summary.csv", tables.csv);
  return cells;
}

std::vector<BatchPoint> batch_points(const std::vector<CellSummary>& cells,
                                     const std::vector<std::string>& series_keys,
                                     const std::string& best_key) {
  std::vector<BatchPoint> points;
  std::vector<std::string> best_values;  // per point, its value of best_key
  for (const auto& cell : cells) {
    if (!cell.diverged() && !cell.metrics.ap) continue;
    const auto setting = [&](const std::string& key) {
      const auto value = cell.setting(key);
      if (!value)
        throw Error("the cell has no " + key + " (neither an override nor in its config.yaml)",
                    cell.name, "plot by keys of the recipe, e.g. --series SOLVER.OPTIMIZER");
      return *value;
    };
    BatchPoint point;
    for (const auto& key : series_keys)
      point.series += (point.series.empty() ? "" : " ") + setting(key);
    const std::string batch = setting("SOLVER.IMS_PER_BATCH");
    point.batch = std::strtod(batch.c_str(), nullptr);
    point.ap = cell.metrics.ap.value_or(0);
    point.diverged = cell.diverged();
    points.push_back(std::move(point));
    best_values.push_back(best_key.empty() ? "" : setting(best_key));
  }
  if (best_key.empty()) return points;
  // (series, batch) -> best_key's value -> (sum of AP, cells)
  std::map<std::pair<std::string, double>, std::map<std::string, std::pair<double, int>>> groups;
  for (size_t i = 0; i < points.size(); ++i) {
    auto& total = groups[{points[i].series, points[i].batch}][best_values[i]];
    total.first += points[i].diverged ? 0 : points[i].ap;
    ++total.second;
  }
  std::map<std::pair<std::string, double>, std::string> best;  // (series, batch) -> best value
  for (const auto& [group, values] : groups)
    best[group] = std::max_element(values.begin(), values.end(), [](auto& a, auto& b) {
                    return a.second.first / a.second.second < b.second.first / b.second.second;
                  })->first;
  std::vector<BatchPoint> kept;
  for (size_t i = 0; i < points.size(); ++i)
    if (best.at({points[i].series, points[i].batch}) == best_values[i]) kept.push_back(points[i]);
  return kept;
}

}  // namespace largedet::tools::sweep
