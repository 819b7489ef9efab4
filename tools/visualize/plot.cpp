#include "visualize/plot.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "largedet/core/error.h"

namespace largedet::tools {
namespace {

std::string basename_of(const std::string& dir) {
  std::string path = dir;
  // "." or "runs/x/" should be named after the directory itself, not "." or "".
  if (char* real = ::realpath(dir.c_str(), nullptr)) {
    if (path == "." || path == ".." || path.empty()) path = real;
    ::free(real);
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

RunCurves read_run(const std::string& run_dir) {
  const std::string file = run_dir + "/metrics.jsonl";
  std::ifstream in(file);
  if (!in)
    throw Error("no metrics.jsonl in the run directory", run_dir,
                "pass the OUTPUT_DIR of a `largedet train` run");
  RunCurves run;
  run.name = basename_of(run_dir);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = file + ":" + std::to_string(number);
    const auto object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded() || !object.is_object())
      throw Error("not a JSON object", where, "each line must be one JSON object");
    const auto iteration = object.find("iteration");
    if (iteration == object.end() || !iteration->is_number())
      throw Error("no numeric \"iteration\"", where);
    for (const auto& [key, value] : object.items()) {
      if (key != "iteration" && value.is_number())
        run.series[key].emplace_back(iteration->get<double>(), value.get<double>());
    }
  }
  // A resumed run appends the iterations since its last checkpoint again: keep the latest value
  // of each iteration, in iteration order.
  for (auto& [key, points] : run.series) {
    std::stable_sort(points.begin(), points.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<double, double>> unique;
    for (const auto& point : points) {
      if (!unique.empty() && unique.back().first == point.first)
        unique.back() = point;
      else
        unique.push_back(point);
    }
    points = std::move(unique);
  }
  return run;
}

bool glob_match(const std::string& pattern, const std::string& text) {
  // Greedy, backtracking only to the last '*': linear in practice, no recursion.
  size_t p = 0, t = 0, star = std::string::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string::npos) {
      p = star + 1;  // let the last '*' swallow one more character
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::vector<ScalarPanel> match_scalars(const std::vector<RunCurves>& runs,
                                       const std::vector<std::string>& patterns) {
  std::set<std::string> keys;
  for (const auto& run : runs)
    for (const auto& [key, points] : run.series)
      if (!points.empty()) keys.insert(key);
  std::vector<ScalarPanel> panels;
  for (const auto& pattern : patterns) {
    ScalarPanel panel{pattern, {}};
    for (const auto& key : keys)
      if (glob_match(pattern, key)) panel.keys.push_back(key);
    if (panel.keys.empty())
      throw Error(
          std::string("matches no numeric key of ") + (runs.size() == 1 ? "the run" : "any run"),
          "--scalars " + pattern,
          keys.empty()
              ? "the metrics.jsonl files hold no numeric values besides iteration"
              : "the numeric keys: " + name_list({keys.begin(), keys.end()}, /*shown=*/50));
    panels.push_back(std::move(panel));
  }
  return panels;
}

std::array<uint8_t, 3> run_color(std::size_t index) {
  // matplotlib's tab10: the colours people read curve plots in.
  static const std::array<uint8_t, 3> palette[] = {
      {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
      {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return palette[index % std::size(palette)];
}

#ifndef LARGEDET_WITH_CAIRO
void write_curves_png(const std::string& path, const std::vector<RunCurves>&,
                      const CurvesOptions&) {
  throw Error("LargeDet was built without cairo: cannot draw curves", path,
              "install libcairo2-dev with `make deps`, then rebuild");
}

void write_scalars_png(const std::string& path, const std::vector<RunCurves>&,
                       const std::vector<std::string>&) {
  throw Error("LargeDet was built without cairo: cannot draw scalars", path,
              "install libcairo2-dev with `make deps`, then rebuild");
}

void write_ap_vs_batch_png(const std::string& path, const std::vector<BatchPoint>&) {
  throw Error("LargeDet was built without cairo: cannot draw AP against batch", path,
              "install libcairo2-dev with `make deps`, then rebuild");
}
#endif

}  // namespace largedet::tools
