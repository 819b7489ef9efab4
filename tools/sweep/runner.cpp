#include "sweep/runner.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/run_lock.h"
#include "sweep/grid.h"
#include "sweep/record.h"
#include "sweep/subprocess.h"
#include "sweep/summary.h"

namespace largedet::tools::sweep {
namespace {

namespace fs = std::filesystem;

// What the sweep decided for one cell before running anything.
struct Plan {
  Cell cell;
  std::string dir;
  int64_t max_iter = 0;
  std::optional<Status> final_status;  // set: skip the cell
  bool archived = false;               // final_status comes from the archive
  int64_t resume_from = 0;             // the newest checkpoint's iteration
};

struct Outcome {
  Status status = Status::kFailed;
  std::string reason;
  CellMetrics metrics;
  double seconds = 0;
};

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoi(value) : fallback;
}

std::string joined(const std::vector<std::string>& items) {
  std::string text;
  for (const auto& item : items) text += (text.empty() ? "" : " ") + item;
  return text.empty() ? "(none)" : text;
}

// The status of a finished cell in `dir` (the cell's run directory or its archived copy), or
// nullopt when it still has to train. A cell is finished when its metrics reach max_iter or its
// record says the NaN guard stopped it; a record for a different MAX_ITER does not count.
std::optional<Status> finished_status(const std::string& dir, const Cell& cell, int64_t max_iter) {
  const auto record = read_record(dir);
  if (!record) return std::nullopt;
  if (record->overrides != cell.overrides || record->fixed != cell.fixed)
    throw Error("the directory holds a cell run with other overrides (" +
                    joined(record->overrides) + " " + joined(record->fixed) + ", not " +
                    joined(cell.overrides) + " " + joined(cell.fixed) + ")",
                dir, "sweep into another --output (and --archive), or move the directory away");
  if (record->max_iter != max_iter) return std::nullopt;
  if (record->status == Status::kDiverged) return Status::kDiverged;
  const CellMetrics metrics = metrics_of(dir);
  if (metrics.iterations < max_iter) return std::nullopt;
  return loss_divergence(metrics) ? Status::kDiverged : Status::kDone;
}

int64_t newest_checkpoint(const std::string& dir) {
  int64_t newest = 0;
  if (!is_directory(dir)) return newest;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    long long iteration = 0;
    char tail[32] = "";
    // model_0001234.safetensors, not model_final.safetensors or a temporary.
    if (std::sscanf(name.c_str(), "model_%lld.%31s", &iteration, tail) == 2 &&
        std::string(tail) == "safetensors")
      newest = std::max<int64_t>(newest, iteration);
  }
  return newest;
}

std::vector<std::string> train_command(const SweepOptions& options, const std::string& executable,
                                       const Plan& plan) {
  std::vector<std::string> argv = {executable};
  if (options.nproc_per_node > 0)
    argv.insert(argv.end(), {"launch", "--nproc-per-node", std::to_string(options.nproc_per_node),
                             "--", executable});
  argv.insert(argv.end(), {"train", "--config", options.base, "--output", plan.dir, "--resume"});
  for (const auto& o : plan.cell.all_overrides()) argv.push_back(o);
  return argv;
}

std::string shell_words(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& arg : argv) {
    const bool plain = arg.find_first_not_of(
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789_-.,/=:+@") == std::string::npos;
    std::string word = "'";
    for (const char c : arg) word += c == '\'' ? std::string("'\\''") : std::string(1, c);
    text += (text.empty() ? "" : " ") + (plain && !arg.empty() ? arg : word + "'");
  }
  return text;
}

std::string duration(double seconds) {
  char text[32];
  if (seconds < 90)
    std::snprintf(text, sizeof text, "%.0f s", seconds);
  else if (seconds < 5400)
    std::snprintf(text, sizeof text, "%.1f min", seconds / 60);
  else
    std::snprintf(text, sizeof text, "%.1f h", seconds / 3600);
  return text;
}

// `text` without the parenthesised hint that ends a largedet::Error's message.
std::string without_hint(const std::string& text) {
  if (text.empty() || text.back() != ')') return text;
  int depth = 0;
  for (size_t i = text.size(); i-- > 0;) {
    depth += text[i] == ')' ? 1 : text[i] == '(' ? -1 : 0;
    if (depth == 0) return i > 0 && text[i - 1] == ' ' ? text.substr(0, i - 1) : text;
  }
  return text;
}

// The NaN guard's error in the output of this attempt, without the CLI's "error: " and the hint
// (the summary's reason column is read next to others).
std::optional<std::string> guard_message(const std::string& log_text) {
  const auto at = log_text.find("training diverged");
  if (at == std::string::npos) return std::nullopt;
  const auto begin = log_text.rfind('\n', at) + 1;  // npos + 1 == 0
  std::string line = log_text.substr(begin, log_text.find('\n', at) - begin);
  if (const auto error = line.find("error: "); error != std::string::npos)
    line = line.substr(error + 7);
  return without_hint(line);
}

std::string log_tail(const std::string& log_text, int lines) {
  size_t end = log_text.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  size_t begin = end + 1;
  for (int n = 0; n < lines && begin > 0; ++n) {
    const size_t newline = log_text.rfind('\n', begin - 1);
    begin = newline == std::string::npos ? 0 : newline;
  }
  if (log_text[begin] == '\n') ++begin;
  return log_text.substr(begin, end + 1 - begin);
}

std::string metrics_text(const CellMetrics& m, int64_t max_iter) {
  std::ostringstream text;
  text.precision(4);
  text << "iteration " << m.iterations << "/" << max_iter;
  if (m.final_loss) text << ", loss " << *m.final_loss;
  if (m.ap) text << ", AP " << *m.ap;
  return text.str();
}

// "9 done, 1 collapsed, 2 diverged": the cells of a summary by their status there (collapsed
// apart from done), the statuses in a fixed order, those without cells left out.
std::string outcome_counts(const std::vector<CellSummary>& cells) {
  std::string text;
  for (const char* status : {"done", "collapsed", "diverged", "failed", "stopped", "running"}) {
    const auto count = std::count_if(cells.begin(), cells.end(), [&](const CellSummary& cell) {
      return cell.status() == status;
    });
    if (count > 0) text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + status;
  }
  return text;
}

class Sweep {
 public:
  explicit Sweep(const SweepOptions& options)
      : options_(options),
        rank_(env_int("RANK", 0)),
        executable_(fs::canonical(options.executable).string()) {}

  int run() {
    // One sweep per output directory (each cell's train locks the cell's directory itself).
    std::unique_ptr<RunLock> lock;
    if (leader() && !options_.dry_run) {
      make_directories(options_.output, "the sweep's output directory");
      lock = std::make_unique<RunLock>(options_.output, "sweep");
    }
    plan_cells();
    if (options_.dry_run) return print_plan();
    StopSignals signals;
    int failed = 0;
    for (size_t i = 0; i < plans_.size() && !StopSignals::stop_requested(); ++i) {
      const Plan& plan = plans_[i];
      if (plan.final_status) {
        line(i, status_name(*plan.final_status) + " earlier" + (plan.archived ? " (archive)" : "") +
                    ": skipped");
        continue;
      }
      line(i, plan.resume_from > 0 ? "resuming from iteration " + std::to_string(plan.resume_from)
                                   : std::string("starting"));
      const Outcome outcome = run_cell(plan);
      failed += outcome.status == Status::kFailed;
      if (outcome.status != Status::kStopped) seconds_.push_back(outcome.seconds);
      report(i, outcome);
    }
    if (leader()) write_summaries();
    if (StopSignals::stop_requested()) {
      if (leader()) std::cout << "sweep stopped; rerun the same command to resume" << std::endl;
      return 130;
    }
    return failed > 0 ? 1 : 0;
  }

 private:
  bool leader() const { return rank_ == 0; }

  // Every value of every axis, the other axes at their first value, against the recipe: a bad key
  // or value fails in a number of checks that grows with the values, not with the cells.
  void check_axes(const Grid& grid) const {
    for (size_t a = 0; a < grid.axes.size(); ++a) {
      for (const auto& value : grid.axes[a].values) {
        std::vector<std::string> overrides;
        for (size_t b = 0; b < grid.axes.size(); ++b)
          overrides.push_back(grid.axes[b].key + "=" + (a == b ? value : grid.axes[b].values[0]));
        overrides.insert(overrides.end(), grid.fixed.begin(), grid.fixed.end());
        options_.max_iter(overrides);
      }
    }
  }

  void plan_cells() {
    const Grid grid = parse_grid(options_.grid, options_.prefix);
    check_cell_count(grid, options_.max_cells);
    check_axes(grid);
    for (auto& cell : expand(grid, options_.max_cells)) {
      Plan plan;
      plan.dir = options_.output + "/" + cell.name;
      plan.max_iter = options_.max_iter(cell.all_overrides());
      plan.final_status = finished_status(plan.dir, cell, plan.max_iter);
      if (!plan.final_status && !options_.archive.empty()) {
        plan.final_status =
            finished_status(options_.archive + "/" + cell.name, cell, plan.max_iter);
        plan.archived = plan.final_status.has_value();
      }
      plan.resume_from = newest_checkpoint(plan.dir);
      plan.cell = std::move(cell);
      plans_.push_back(std::move(plan));
    }
    // A cell whose training ended but whose record was not updated (the sweep was killed then)
    // gets its record now, and a finished cell missing from the archive (killed, or the archive
    // failed, after its record was written) is archived now, so that the summary and the archive
    // agree with the plan.
    if (!leader() || options_.dry_run) return;
    for (const Plan& plan : plans_) {
      if (!plan.final_status || plan.archived) continue;
      auto record = *read_record(plan.dir);
      if (record.status != *plan.final_status) {
        record.status = *plan.final_status;
        record.reason = loss_divergence(metrics_of(plan.dir)).value_or("");
        write_record(plan.dir, record);
      }
      archive(plan);
    }
  }

  int print_plan() const {
    for (size_t i = 0; i < plans_.size(); ++i) {
      const Plan& plan = plans_[i];
      std::string state = plan.final_status ? status_name(*plan.final_status) + ", skipped"
                          : plan.resume_from > 0
                              ? "resumes from iteration " + std::to_string(plan.resume_from)
                              : "to run";
      if (plan.archived) state += " (archive)";
      line(i, state + ", MAX_ITER " + std::to_string(plan.max_iter));
      if (!plan.final_status)
        std::cout << "    " << shell_words(train_command(options_, executable_, plan)) << "\n";
    }
    std::cout << std::flush;
    return 0;
  }

  Outcome run_cell(const Plan& plan) {
    fs::create_directories(plan.dir);
    CellRecord record = read_record(plan.dir).value_or(CellRecord{});
    record.cell = plan.cell.name;
    record.overrides = plan.cell.overrides;
    record.fixed = plan.cell.fixed;
    record.base = options_.base;
    record.max_iter = plan.max_iter;
    record.status = Status::kRunning;
    record.reason.clear();
    ++record.attempts;
    if (leader()) write_record(plan.dir, record);

    ChildOptions child;
    child.argv = train_command(options_, executable_, plan);
    child.log_path =
        plan.dir + (leader() ? "/log.txt" : "/log.rank" + std::to_string(rank_) + ".txt");
    child.echo = options_.echo;
    // Without --echo, one line on a terminal says where the running cell is.
    const bool status_line = !options_.echo && leader() && ::isatty(STDERR_FILENO) == 1;
    if (status_line) {
      child.on_output = [name = plan.cell.name](const std::string& chunk) {
        const std::string progress = cell_progress(chunk);
        if (!progress.empty()) std::cerr << "\r\033[K  " << name << ": " << progress << std::flush;
      };
    }
    const auto log_start = fs::exists(child.log_path) ? fs::file_size(child.log_path) : 0;
    std::ofstream(child.log_path, std::ios::app)
        << "==== largedet sweep, attempt " << record.attempts << ": " << shell_words(child.argv)
        << std::endl;
    const auto start = std::chrono::steady_clock::now();
    const int code = run_child(child);
    if (status_line) std::cerr << "\r\033[K" << std::flush;
    Outcome outcome;
    outcome.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    outcome.metrics = metrics_of(plan.dir);
    classify(plan, code, read_file(child.log_path).substr(log_start), outcome);

    record.status = outcome.status;
    record.reason = outcome.reason;
    record.wall_seconds += outcome.seconds;
    if (leader()) {
      write_record(plan.dir, record);
      if (is_final(outcome.status)) archive(plan);
    }
    return outcome;
  }

  static void classify(const Plan& plan, int code, const std::string& log_text, Outcome& outcome) {
    if (code == 0 && outcome.metrics.iterations >= plan.max_iter) {
      const auto rose = loss_divergence(outcome.metrics);
      outcome.status = rose ? Status::kDiverged : Status::kDone;
      outcome.reason = rose.value_or("");
    } else if (const auto guard = guard_message(log_text); guard && code != 0) {
      outcome.status = Status::kDiverged;
      outcome.reason = *guard;
    } else if (StopSignals::stop_requested() || code == 128 + SIGINT || code == 128 + SIGTERM) {
      // A signal to the sweep, or one to the cell alone: train checkpointed and exited 130/143.
      outcome.status = Status::kStopped;
      outcome.reason =
          "stopped by a signal at iteration " + std::to_string(outcome.metrics.iterations);
    } else {
      outcome.status = Status::kFailed;
      outcome.reason = code == 0    ? "train exited before SOLVER.MAX_ITER"
                       : code > 128 ? "train was killed by signal " + std::to_string(code - 128)
                                    : "train exited with code " + std::to_string(code);
      outcome.reason += "\n" + log_tail(log_text, 12);
    }
  }

  void report(size_t index, const Outcome& outcome) const {
    const Plan& plan = plans_[index];
    std::string text = status_name(outcome.status) + " in " + duration(outcome.seconds) + " (" +
                       metrics_text(outcome.metrics, plan.max_iter) + ")";
    if (outcome.status == Status::kDiverged) text += ": " + outcome.reason;
    if (!seconds_.empty()) {
      size_t left = 0;
      for (size_t j = index + 1; j < plans_.size(); ++j) left += !plans_[j].final_status;
      double mean = 0;
      for (const double s : seconds_) mean += s / static_cast<double>(seconds_.size());
      if (left > 0)
        text += "; ETA " + duration(mean * static_cast<double>(left)) + " for " +
                std::to_string(left) + " more cell" + (left > 1 ? "s" : "");
    }
    line(index, text);
    if (outcome.status == Status::kFailed && leader())
      std::cout << "    " << plan.dir << "/log.txt: " << outcome.reason << std::endl;
  }

  void line(size_t index, const std::string& text) const {
    if (!leader()) return;
    std::cout << "[" << index + 1 << "/" << plans_.size() << "] " << plans_[index].cell.name << ": "
              << text << std::endl;
  }

  // Copies what rebuilds the summary (not the checkpoints) into ARCHIVE/<cell>.
  void archive(const Plan& plan) const {
    if (options_.archive.empty()) return;
    const std::string target = options_.archive + "/" + plan.cell.name;
    fs::create_directories(target);
    for (const char* name : {"metrics.jsonl", "config.yaml", "sweep.json"}) {
      const std::string source = plan.dir + "/" + name;
      if (fs::is_regular_file(source)) write_file_atomic(target + "/" + name, read_file(source));
    }
  }

  void write_summaries() const {
    for (const auto& dir : {options_.output, options_.archive}) {
      const bool has_cells = std::any_of(plans_.begin(), plans_.end(), [&](const Plan& plan) {
        return fs::is_regular_file(record_path(dir + "/" + plan.cell.name));
      });
      if (dir.empty() || !has_cells) continue;
      const auto cells = write_summary(dir);
      std::cout << "summary of " << cells.size() << " cell(s) (" << outcome_counts(cells)
                << "): " << dir << "/summary.md, " << dir << "/summary.csv" << std::endl;
    }
  }

  const SweepOptions& options_;
  const int rank_;
  const std::string executable_;
  std::vector<Plan> plans_;
  std::vector<double> seconds_;  // wall time of each cell run in this sweep
};

}  // namespace

std::string cell_progress(const std::string& output) {
  const size_t at = output.rfind("] iter ");
  if (at == std::string::npos) return "";
  const size_t end = output.find('\n', at);
  const std::string line = output.substr(at + 2, end == std::string::npos ? end : end - at - 2);
  const size_t space = line.find(' ', 5);
  std::string progress = line.substr(0, space);  // "iter 3213/12600"
  const size_t eta = line.rfind("eta ");
  if (eta != std::string::npos) progress += ", " + line.substr(eta);
  return progress;
}

int run_sweep(const SweepOptions& options) { return Sweep(options).run(); }

}  // namespace largedet::tools::sweep
