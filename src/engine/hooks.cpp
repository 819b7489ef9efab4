#include "largedet/engine/hooks.h"

#include <torch/torch.h>

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#ifdef LARGEDET_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/data/build.h"
#include "largedet/data/loader.h"
#include "largedet/distributed/collectives.h"
#include "largedet/engine/agreement.h"
#include "largedet/engine/evaluator.h"
#include "largedet/engine/precise_bn.h"
#include "largedet/solver/lr_schedule.h"

namespace largedet::engine {

namespace {

std::atomic<int> g_stop_signal{0};  // the first SIGINT/SIGTERM of this run
std::atomic<int> g_signals{0};      // how many arrived

void say(const char* text) { (void)!::write(STDERR_FILENO, text, std::strlen(text)); }

// The first signal stops the run after this iteration with a checkpoint, and says so at once; a
// second is acknowledged and ignored (the checkpoint may be on its way); a third ends the process
// as the signal would, without one. Only async-signal-safe calls here.
extern "C" void on_stop_signal(int signal) {
  const int count = ++g_signals;
  if (count == 1) {
    g_stop_signal = signal;
    say(signal == SIGINT ? "\nlargedet: SIGINT: stopping after this iteration with a checkpoint "
                           "(a third signal forces an exit without one)\n"
                         : "\nlargedet: SIGTERM: stopping after this iteration with a checkpoint "
                           "(a third signal forces an exit without one)\n");
  } else if (count == 2) {
    say("largedet: already stopping, the checkpoint comes first; one more signal forces an exit "
        "without it\n");
  } else {
    std::signal(signal, SIG_DFL);
    ::raise(signal);
  }
}

// Peak GPU memory allocated by tensors since the last call (one log period) on CUDA; the
// process's resident memory on the CPU.
double memory_mb(const c10::Device& device) {
#ifdef LARGEDET_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1 << 20);
  }
#endif
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

// Whether a hook acting every `period` iterations (0: only at the end) acts after this step: at
// each multiple of the period, and at the last iteration.
bool due(const Trainer& trainer, int64_t period) {
  const int64_t done = trainer.iteration() + 1;
  return (period > 0 && done % period == 0) || done == trainer.max_iter();
}

// The periodic evaluation's test set, loaded once at the start rather than hours later at the
// first evaluation: it must exist and name the training set's classes in the same order.
TestSet load_checked_test_set(const Config& config, const data::Dataset& train, bool scores) {
  if (config.get<std::string>("DATASETS.TEST_ANNOTATIONS").empty()) {
    throw Error("TEST.EVAL_PERIOD is " + config.get<std::string>("TEST.EVAL_PERIOD") +
                    " but there is no test set",
                config.source("TEST.EVAL_PERIOD"),
                "set DATASETS.TEST_ANNOTATIONS (and TEST_IMAGES), or TEST.EVAL_PERIOD=0");
  }
  TestSet test = load_test_set(config, scores);
  const data::Dataset& set = *test.dataset;
  if (set.category_ids != train.category_ids || set.class_mids != train.class_mids) {
    throw Error("the test set's classes differ from the training set's (" +
                    std::to_string(set.num_classes()) + " vs " +
                    std::to_string(train.num_classes()) + ", or another order)",
                set.name, "evaluate on a split of the same dataset");
  }
  return test;
}

}  // namespace

void LRScheduleHook::before_step(Trainer& trainer) {
  trainer.scheduler().set_iteration(trainer.iteration());
}

StopSignalHook::~StopSignalHook() { restore(); }

void StopSignalHook::before_train(Trainer&) {
  g_stop_signal = 0;
  g_signals = 0;
  old_int_ = std::signal(SIGINT, on_stop_signal);
  old_term_ = std::signal(SIGTERM, on_stop_signal);
  installed_ = true;
}

void StopSignalHook::before_step(Trainer& trainer) {
  if (g_stop_signal != 0) trainer.request_stop();
}

void StopSignalHook::after_train(Trainer& trainer) {
  restore();
  if (!trainer.stopping()) return;
  trainer.result().stop_signal = g_stop_signal;
  log::info() << "stopped by a signal at iteration " << trainer.iteration()
              << "; continue with the same command and --resume";
}

void StopSignalHook::restore() {
  // After a stop by signal the process is on its way out: the handler stays, so that a repeated
  // Ctrl-C during the shutdown is still acknowledged and ignored (a third still ends it).
  if (!installed_ || g_signals > 0) return;
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
  installed_ = false;
}

void NonFiniteGuardHook::after_step(Trainer& trainer) {
  const StepOutcome& step = trainer.last_step();
  if (!step.any_non_finite) {
    in_a_row_ = 0;
    return;
  }
  ++in_a_row_;
  std::string names;
  for (const auto& n : step.non_finite) names += (names.empty() ? "" : ", ") + n;
  if (names.empty()) names = "on another rank";
  log::warning() << "iteration " << trainer.iteration() + 1 << ": non-finite loss (" << names
                 << "); step skipped (" << in_a_row_ << " in a row)";
  if (in_a_row_ >= max_bad_steps_) {
    throw Error("training diverged: " + std::to_string(in_a_row_) +
                    " steps in a row had non-finite losses (" + names + ")",
                "iteration " + std::to_string(trainer.iteration() + 1),
                "lower SOLVER.BASE_LR, lengthen SOLVER.WARMUP_ITERS or clip gradients "
                "(SOLVER.CLIP_GRADIENTS.ENABLED=true, CLIP_TYPE=full_model); then --resume from "
                "the last checkpoint");
  }
}

void PeriodicWriterHook::before_train(Trainer& trainer) {
  progress_ = std::make_unique<Progress>(trainer.start_iteration(), trainer.max_iter(),
                                         trainer.rank() == 0);
}

void PeriodicWriterHook::before_step(Trainer&) { step_start_ = std::chrono::steady_clock::now(); }

void PeriodicWriterHook::after_step(Trainer& trainer) {
  step_seconds_ +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start_).count();
  ++steps_;
  const StepOutcome& step = trainer.last_step();
  // Every rank skips the same steps (the agreement), so every rank holds the same names.
  if (!step.any_non_finite) {
    for (const auto& [name, value] : step.losses) sums_[name] += value;
    sums_["data_time"] += step.data_time;
    sums_["lr"] += step.lr;
    ++sums_count_;
  }
  const int64_t done = trainer.iteration() + 1;
  const bool log_now = due(trainer, period_) || trainer.stopping();
  if (log_now && sums_count_ > 0) {
    auto values = torch::empty({static_cast<int64_t>(sums_.size())}, torch::kDouble);
    int64_t i = 0;
    for (const auto& [name, sum] : sums_) values[i++] = sum / static_cast<double>(sums_count_);
    distributed::all_reduce_mean(values, trainer.group());
    std::map<std::string, double> scalars;
    const double* mean = values.data_ptr<double>();  // on the host: no item() to wait on
    for (const auto& [name, sum] : sums_) scalars[name] = *mean++;
    const double per_iteration = step_seconds_ / static_cast<double>(steps_);
    const auto& plan = trainer.batch_plan();
    scalars["time"] = per_iteration;
    scalars["images_per_second"] =
        static_cast<double>(plan.per_rank * trainer.world_size()) / per_iteration;
    scalars["memory_mb"] = memory_mb(trainer.device());
    trainer.write_metrics(done, scalars);
    if (trainer.rank() == 0) {
      last_logged_ = scalars;
      progress_->clear();
      std::ostringstream line;
      line << "iter " << done << "/" << trainer.max_iter() << "  total_loss "
           << scalars["total_loss"];
      for (const auto& [name, value] : scalars)
        if (name.rfind("loss_", 0) == 0) line << "  " << name << " " << value;
      line << "  lr " << scalars["lr"] << "  " << per_iteration << " s/it  data "
           << scalars["data_time"] << " s  eta " << format_duration(progress_->eta_seconds(done));
      log::info() << line.str();
    }
    sums_.clear();
    sums_count_ = 0;
  }
  if (log_now) {
    step_seconds_ = 0;
    steps_ = 0;
  }
  if (trainer.rank() == 0) {
    std::ostringstream status;
    if (!last_logged_.empty()) status << "loss " << last_logged_["total_loss"];
    progress_->update(done, status.str());
    if (trainer.stopping() || done == trainer.max_iter()) progress_->clear();
  }
}

void PreciseBNHook::after_step(Trainer& trainer) {
  if (trainer.stopping() || !due(trainer, period_)) return;
  // The k-th update reads the k-th run of NUM_ITER batches of a loader of its own, so that the
  // training loader's order is untouched and a resumed run sees the same batches.
  const int64_t done = trainer.iteration() + 1;
  const int64_t updates_before = period_ > 0 ? (done - 1) / period_ : 0;
  auto loader = data::build_train_loader(trainer.config(), trainer.dataset(), trainer.rank(),
                                         trainer.world_size(), updates_before * num_iter_);
  const int64_t layers = update_bn_stats(
      trainer.model(),
      [&](int64_t i) {
        auto batch = loader->next();
        LARGEDET_CHECK(batch.has_value(), "the precise-BN loader ended (it should never)");
        // Seeds apart from the training steps' (iterations are >= 0).
        trainer.forward(*batch, step_seed(trainer.seed(), -1 - done,
                                          i * trainer.world_size() + trainer.rank()));
      },
      num_iter_);
  if (layers > 0 && trainer.rank() == 0)
    log::info() << "precise BN: running statistics of " << layers << " layer(s) from " << num_iter_
                << " batch(es) of " << trainer.batch_plan().per_device << " image(s) per rank";
}

void PeriodicCheckpointerHook::after_step(Trainer& trainer) {
  const bool last = trainer.iteration() + 1 == trainer.max_iter();
  if (!due(trainer, period_) && !trainer.stopping()) return;
  trainer.save_checkpoint();
  if (!last) return;
  const std::string path = trainer.output_dir() + "/model_final.safetensors";
  run_and_agree(trainer.group(), trainer.rank() == 0, "saving the final weights", [&] {
    modeling::save_weights(trainer.model(), path);
    log::info() << "final weights: " << path << "; " << trainer.dataset()->bad_input->summary();
  });
}

namespace {

std::string pending_evaluation_path(const Trainer& trainer) {
  return trainer.output_dir() + "/evaluation_pending";
}

}  // namespace

bool EvalHook::evaluate(Trainer& trainer, int64_t iteration) {
  EvalOptions options;
  options.should_stop = [] { return g_stop_signal != 0; };
  std::map<std::string, double> scalars;
  try {
    scalars =
        evaluate_detector(trainer.model(), trainer.config(), test_set_, trainer.device(), options);
  } catch (const EvaluationInterrupted&) {
    trainer.model().train();
    run_and_agree(trainer.group(), trainer.rank() == 0, "recording the pending evaluation", [&] {
      write_file_atomic(pending_evaluation_path(trainer), std::to_string(iteration) + "\n");
    });
    log::info() << "evaluation at iteration " << iteration
                << " stopped by a signal; --resume runs it first";
    trainer.stop_agreed();
    return false;
  }
  trainer.model().train();
  trainer.write_metrics(iteration, scalars);
  if (trainer.rank() == 0) trainer.result().evaluation = scalars;
  return true;
}

void EvalHook::before_train(Trainer& trainer) {
  // Rank 0 reads the marker; every rank then agrees whether to evaluate first.
  const std::string path = pending_evaluation_path(trainer);
  double pending = 0;
  if (trainer.rank() == 0 && std::filesystem::exists(path)) {
    const std::string text = read_file(path);
    pending = std::strtoll(text.c_str(), nullptr, 10) == trainer.start_iteration() &&
                      trainer.start_iteration() > 0
                  ? 1
                  : 0;
    if (pending == 0) std::filesystem::remove(path);  // another iteration's: stale
  }
  auto flag = torch::tensor({pending}, torch::kDouble);
  if (trainer.world_size() > 1) distributed::all_reduce_sum(flag, trainer.group());
  if (flag.item<double>() == 0) return;
  log::info() << "evaluating iteration " << trainer.start_iteration()
              << " first: a signal stopped its evaluation";
  if (evaluate(trainer, trainer.start_iteration()) && trainer.rank() == 0)
    std::filesystem::remove(path);
}

void EvalHook::after_step(Trainer& trainer) {
  if (trainer.stopping() || !due(trainer, period_)) return;
  if (!evaluate(trainer, trainer.iteration() + 1)) trainer.save_checkpoint();
}

std::vector<std::shared_ptr<HookBase>> default_hooks(const Trainer& trainer) {
  const Config& config = trainer.config();
  std::vector<std::shared_ptr<HookBase>> hooks = {
      std::make_shared<LRScheduleHook>(),
      std::make_shared<StopSignalHook>(),
      std::make_shared<NonFiniteGuardHook>(config.get<int64_t>("SOLVER.MAX_BAD_STEPS")),
      std::make_shared<PeriodicWriterHook>(config.get<int64_t>("SOLVER.LOG_PERIOD")),
  };
  const int64_t eval_period = config.get<int64_t>("TEST.EVAL_PERIOD");
  if (config.get<bool>("TEST.PRECISE_BN.ENABLED"))
    hooks.push_back(std::make_shared<PreciseBNHook>(
        eval_period, config.get<int64_t>("TEST.PRECISE_BN.NUM_ITER")));
  hooks.push_back(
      std::make_shared<PeriodicCheckpointerHook>(config.get<int64_t>("SOLVER.CHECKPOINT_PERIOD")));
  if (eval_period > 0) {
    hooks.push_back(std::make_shared<EvalHook>(
        eval_period, load_checked_test_set(config, *trainer.dataset(), trainer.rank() == 0)));
  }
  return hooks;
}

}  // namespace largedet::engine
