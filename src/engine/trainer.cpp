#include "largedet/engine/trainer.h"

#include <torch/torch.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <sstream>

#ifdef LARGEDET_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/data/build.h"
#include "largedet/data/seed.h"
#include "largedet/distributed/collectives.h"
#include "largedet/distributed/gradient_sync.h"
#include "largedet/engine/agreement.h"
#include "largedet/engine/checkpointer.h"
#include "largedet/engine/evaluator.h"
#include "largedet/engine/loss_scaler.h"
#include "largedet/engine/metrics_writer.h"
#include "largedet/engine/progress.h"
#include "largedet/engine/runtime.h"
#include "largedet/modeling/detector.h"
#include "largedet/ops/autocast.h"
#include "largedet/solver/build.h"

namespace largedet::engine {

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// SIGINT / SIGTERM ask the loop to stop at the next iteration boundary (after saving); a second
// signal falls back to the default action, so a stuck job can still be killed.
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int signal) {
  g_stop_signal = signal;
  std::signal(signal, SIG_DFL);
}

class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

std::string archive_bytes(const std::function<void(torch::serialize::OutputArchive&)>& save) {
  torch::serialize::OutputArchive archive;
  save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_archive(const std::string& bytes, const c10::Device& device,
                  const std::function<void(torch::serialize::InputArchive&)>& load) {
  torch::serialize::InputArchive archive;
  archive.load_from(bytes.data(), bytes.size(), device);
  load(archive);
}

std::string tensor_bytes(const torch::Tensor& t) {
  auto c = t.contiguous().to(torch::kCPU);
  return std::string(static_cast<const char*>(c.data_ptr()), c.nbytes());
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

struct BatchPlan {
  int64_t per_rank = 0;    // images per rank and iteration
  int64_t per_device = 0;  // images per forward/backward
  int64_t micro_batches = 0;
};

BatchPlan plan_batches(const Config& config, int world_size) {
  BatchPlan plan;
  const auto global = config.get<int64_t>("SOLVER.IMS_PER_BATCH");
  plan.per_device = config.get<int64_t>("SOLVER.IMS_PER_DEVICE");
  if (global <= 0 || global % world_size != 0) {
    throw Error("SOLVER.IMS_PER_BATCH = " + std::to_string(global) +
                    " cannot be split evenly over " + std::to_string(world_size) + " ranks",
                config.source("SOLVER.IMS_PER_BATCH"), "use a positive multiple of the world size");
  }
  plan.per_rank = global / world_size;
  if (plan.per_device <= 0 || plan.per_rank % plan.per_device != 0) {
    throw Error("each rank's " + std::to_string(plan.per_rank) +
                    " images per iteration are not a multiple of SOLVER.IMS_PER_DEVICE = " +
                    std::to_string(plan.per_device),
                config.source("SOLVER.IMS_PER_DEVICE"),
                "make IMS_PER_BATCH / world size a multiple of IMS_PER_DEVICE");
  }
  plan.micro_batches = plan.per_rank / plan.per_device;
  return plan;
}

// Running means of the logged scalars over one log period.
class PeriodAverages {
 public:
  void add(const std::string& name, double value) {
    sums_[name] += value;
    counts_[name] += 1;
  }
  // Averages over the period, then over ranks (one allreduce; every rank has the same names).
  std::map<std::string, double> reduce(distributed::ProcessGroup* group) {
    std::map<std::string, double> out;
    if (sums_.empty()) return out;
    auto values = torch::empty({static_cast<int64_t>(sums_.size())}, torch::kDouble);
    int64_t i = 0;
    for (const auto& [name, sum] : sums_) values[i++] = sum / counts_[name];
    distributed::all_reduce_mean(values, group);
    i = 0;
    for (const auto& [name, sum] : sums_) out[name] = values[i++].item<double>();
    sums_.clear();
    counts_.clear();
    return out;
  }

 private:
  std::map<std::string, double> sums_, counts_;
};

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

class Trainer {
 public:
  Trainer(const Config& config, const TrainOptions& options);
  TrainResult run();

 private:
  void resume_or_start();
  std::optional<std::string> checkpoint_to_resume();
  void load_checkpoint(const std::string& path);
  std::string write_checkpoint(int64_t iteration);
  void step(int64_t iteration);
  void log_period(int64_t iteration, double elapsed_iteration_time);
  void evaluate(int64_t iteration);
  std::string save_checkpoint(int64_t iteration);

  Config config_;  // the recipe as this run uses it (resolve_recipe)
  std::string output_dir_;
  bool resume_;
  std::shared_ptr<distributed::ProcessGroup> group_;
  int rank_ = 0, world_ = 1;
  c10::Device device_{c10::kCPU};
  BatchPlan plan_;
  uint64_t seed_ = 0;
  std::shared_ptr<modeling::DetectorImpl> model_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<solver::LRScheduler> scheduler_;
  std::unique_ptr<LossScaler> scaler_;
  bool autocast_ = false;
  at::ScalarType autocast_dtype_ = at::kBFloat16;
  std::unique_ptr<distributed::GradientSync> sync_;
  std::shared_ptr<data::Dataset> dataset_;
  TestSet test_set_;  // when TEST.EVAL_PERIOD > 0
  std::unique_ptr<data::DataLoader> loader_;
  std::unique_ptr<Checkpointer> checkpointer_;
  std::unique_ptr<MetricsWriter> metrics_;
  TrainResult result_;

  int64_t max_iter_ = 0, log_period_ = 20, checkpoint_period_ = 0, eval_period_ = 0;
  int64_t max_bad_steps_ = 10, bad_in_a_row_ = 0;
  bool stop_requested_ = false;
  PeriodAverages period_;
  std::map<std::string, double> last_logged_;
  double period_data_time_ = 0;
  std::set<std::string> bad_losses_;  // this step's non-finite losses
};

Trainer::Trainer(const Config& recipe, const TrainOptions& options)
    : config_(recipe),
      output_dir_(options.output_dir.empty() ? recipe.get<std::string>("OUTPUT_DIR")
                                             : options.output_dir),
      resume_(options.resume) {
  const Runtime runtime = setup_runtime(recipe);
  group_ = runtime.group;
  rank_ = runtime.rank();
  world_ = runtime.world_size();
  device_ = runtime.device;
  // What a detectron2 recipe gets from us where it relies on detectron2's defaults.
  if (recipe.source("VERSION") != "default") {
    const auto differences = recipe.detectron2_differences();
    if (!differences.empty()) {
      auto warning = log::warning();
      warning << "this detectron2 recipe (VERSION " << recipe.get<int>("VERSION") << ") relies on "
              << differences.size()
              << " defaults where LargeDet keeps torchvision's behaviour (set them to get "
                 "detectron2's):";
      for (const auto& d : differences) warning << "\n  " << d;
    }
  }
  for (const auto& note : resolve_recipe(config_, world_)) log::info() << note;
  const Config& config = config_;
  plan_ = plan_batches(config, world_);
  seed_ = static_cast<uint64_t>(config.get<int64_t>("SEED"));
  max_iter_ = config.get<int64_t>("SOLVER.MAX_ITER");
  log_period_ = std::max<int64_t>(1, config.get<int64_t>("SOLVER.LOG_PERIOD"));
  checkpoint_period_ = config.get<int64_t>("SOLVER.CHECKPOINT_PERIOD");
  eval_period_ = config.get<int64_t>("TEST.EVAL_PERIOD");
  max_bad_steps_ = std::max<int64_t>(1, config.get<int64_t>("SOLVER.MAX_BAD_STEPS"));
  LARGEDET_CHECK(max_iter_ > 0, "SOLVER.MAX_ITER must be positive (",
                 config.source("SOLVER.MAX_ITER"), ")");

  std::error_code ec;
  std::filesystem::create_directories(output_dir_, ec);
  if (ec) throw Error("cannot create the output directory: " + ec.message(), output_dir_);
  checkpointer_ =
      std::make_unique<Checkpointer>(output_dir_, config.get<int>("SOLVER.CHECKPOINTS_KEPT"));

  dataset_ = data::build_dataset(config, /*train=*/true);
  const std::string classes_key = modeling::num_classes_key(config);
  if (dataset_->num_classes() != config.get<int64_t>(classes_key)) {
    throw Error("the training set has " + std::to_string(dataset_->num_classes()) +
                    " classes but " + classes_key + " is " +
                    std::to_string(config.get<int64_t>(classes_key)),
                config.source(classes_key), "set " + classes_key + " to the dataset's count");
  }
  if (eval_period_ > 0) test_set_ = load_checked_test_set(config, *dataset_, rank_ == 0);
  if (world_ > 1 && config.get<std::string>("MODEL.RESNETS.NORM") == "BN") {
    log::warning() << "MODEL.RESNETS.NORM is BN on " << world_
                   << " ranks: each rank keeps its own running statistics (checkpoints hold rank "
                      "0's); SyncBN normalises over the global batch";
  }

  torch::manual_seed(seed_);
  model_ = modeling::build_detector(config);
  const auto weights = config.get<std::string>("MODEL.WEIGHTS");
  if (!weights.empty()) {
    auto report = modeling::load_weights(*model_, weights, /*strict=*/false);
    log::info() << "initial weights from " << weights << (report.ok() ? "" : ": " + report.str());
  }
  model_->to(device_);
  model_->train();

  optimizer_ = solver::build_optimizer(config, *model_);
  scheduler_ =
      std::make_unique<solver::LRScheduler>(solver::build_lr_scheduler(config, *optimizer_));

  const bool amp = config.get<bool>("SOLVER.AMP.ENABLED");
  const auto amp_dtype = config.get<std::string>("SOLVER.AMP.DTYPE");
  LARGEDET_CHECK(amp_dtype == "bf16" || amp_dtype == "fp16", "SOLVER.AMP.DTYPE is \"", amp_dtype,
                 "\" (", config.source("SOLVER.AMP.DTYPE"), "); use bf16 or fp16");
  if (amp && amp_dtype == "fp16" && !device_.is_cuda()) {
    throw Error("fp16 mixed precision needs CUDA; this run is on " + device_.str(),
                "SOLVER.AMP.DTYPE (" + config.source("SOLVER.AMP.DTYPE") + ")",
                "use SOLVER.AMP.DTYPE=bf16 (CPU autocast) or SOLVER.AMP.ENABLED=false");
  }
  autocast_ = amp;
  autocast_dtype_ = amp_dtype == "fp16" ? at::kHalf : at::kBFloat16;
  LossScalerOptions scaler_options;
  scaler_options.init_scale = config.get<double>("SOLVER.AMP.INIT_SCALE");
  scaler_options.growth_interval = config.get<int64_t>("SOLVER.AMP.GROWTH_INTERVAL");
  scaler_ = std::make_unique<LossScaler>(amp && autocast_dtype_ == at::kHalf, scaler_options);
}

// Rank 0 picks the checkpoint and tells the others, so that all ranks resume from the same
// iteration even where their views of the directory differ; each rank then loads it itself.
std::optional<std::string> Trainer::checkpoint_to_resume() {
  std::optional<std::string> last;
  if (rank_ == 0 && resume_) last = checkpointer_->last();
  auto iteration =
      torch::full({1}, last ? static_cast<double>(iteration_of(*last)) : -1.0, torch::kDouble);
  distributed::broadcast(iteration, 0, group_.get());
  const auto chosen = static_cast<int64_t>(iteration.item<double>());
  if (chosen < 0) {
    if (resume_) log::info() << "no checkpoint in " << output_dir_ << ": starting from scratch";
    return std::nullopt;
  }
  return checkpoint_path(output_dir_, chosen);
}

void Trainer::load_checkpoint(const std::string& path) {
  Checkpoint checkpoint = Checkpointer::load(path);
  modeling::load_state_dict(*model_, checkpoint.model, /*strict=*/true, path);
  auto state = [&](const std::string& name) -> const std::string& {
    auto it = checkpoint.state.find(name);
    if (it == checkpoint.state.end())
      throw Error("the checkpoint has no " + name + " state", path, "was it written by train?");
    return it->second;
  };
  // The optimizer's state tensors come back on this rank's device (rank 0 saved them from its
  // own, and a GPU run may resume on the CPU).
  load_archive(state("optimizer"), device_, [&](auto& a) { optimizer_->load(a); });
  load_archive(state("scheduler"), c10::Device(c10::kCPU), [&](auto& a) { scheduler_->load(a); });
  scaler_->load_state(state("scaler"));
  const std::string& rng = state("rng/cpu");
  auto rng_state = torch::empty({static_cast<int64_t>(rng.size())}, torch::kByte);
  std::memcpy(rng_state.data_ptr(), rng.data(), rng.size());
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  generator.set_state(rng_state);
  result_.start_iteration = checkpoint.iteration;
  auto saved_config = checkpoint.metadata.find("config");
  if (saved_config != checkpoint.metadata.end() && saved_config->second != config_.dump())
    log::warning() << "the configuration differs from the one " << path << " was trained with";
  auto consumed = checkpoint.metadata.find("batches_consumed_per_rank");
  if (consumed != checkpoint.metadata.end() &&
      std::stoll(consumed->second) != checkpoint.iteration * plan_.micro_batches) {
    log::warning() << "the checkpoint was written with " << consumed->second
                   << " batches per rank consumed, this run counts "
                   << checkpoint.iteration * plan_.micro_batches
                   << " (world size or SOLVER.IMS_PER_DEVICE changed): the data order differs "
                      "from an uninterrupted run";
  }
  log::info() << "resumed from " << path << " at iteration " << checkpoint.iteration;
}

void Trainer::resume_or_start() {
  if (auto path = checkpoint_to_resume()) {
    run_and_agree(group_.get(), true, "loading " + *path, [&] { load_checkpoint(*path); });
  }
  result_.iteration = result_.start_iteration;
  if (world_ > 1) {
    distributed::GradientSyncOptions options;
    options.bucket_size_bytes(config_.get<int64_t>("DISTRIBUTED.BUCKET_SIZE_MB") << 20);
    sync_ = std::make_unique<distributed::GradientSync>(*model_, group_, options);
  }
  loader_ = data::build_train_loader(config_, dataset_, rank_, world_,
                                     result_.start_iteration * plan_.micro_batches);
  run_and_agree(group_.get(), rank_ == 0, "writing to " + output_dir_, [&] {
    // Lines past the checkpoint come from a run that crashed after it: they are redone now.
    MetricsWriter::drop_after(output_dir_, result_.start_iteration);
    metrics_ = std::make_unique<MetricsWriter>(output_dir_);
    write_file_atomic(output_dir_ + "/config.yaml", config_.dump());
  });
}

std::string Trainer::save_checkpoint(int64_t iteration) {
  std::string path;
  run_and_agree(group_.get(), rank_ == 0, "saving the checkpoint",
                [&] { path = write_checkpoint(iteration); });
  return path;
}

std::string Trainer::write_checkpoint(int64_t iteration) {
  Checkpoint checkpoint;
  checkpoint.iteration = iteration;
  for (auto& [name, tensor] : modeling::state_dict(*model_))
    checkpoint.model.emplace(name, tensor.detach().to(torch::kCPU).contiguous());
  checkpoint.state["optimizer"] = archive_bytes([&](auto& a) { optimizer_->save(a); });
  checkpoint.state["scheduler"] = archive_bytes([&](auto& a) { scheduler_->save(a); });
  checkpoint.state["scaler"] = scaler_->state();
  checkpoint.state["rng/cpu"] = tensor_bytes(at::detail::getDefaultCPUGenerator().get_state());
  checkpoint.metadata["config"] = config_.dump();
  checkpoint.metadata["batches_consumed_per_rank"] =
      std::to_string(iteration * plan_.micro_batches);
  std::string path = checkpointer_->save(checkpoint);
  log::info() << "saved " << path;
  return path;
}

void Trainer::step(int64_t iteration) {
  scheduler_->set_iteration(iteration);
  optimizer_->zero_grad(/*set_to_none=*/false);
  std::map<std::string, torch::Tensor> loss_sums;  // over micro-batches, on the device
  double data_time = 0;
  for (int64_t micro = 0; micro < plan_.micro_batches; ++micro) {
    const auto data_start = Clock::now();
    auto batch = loader_->next();
    LARGEDET_CHECK(batch.has_value(), "the training loader ended (it should never)");
    data_time += seconds(Clock::now() - data_start);
    model_->reseed(step_seed(seed_, iteration, rank_, static_cast<int>(micro)));
    if (sync_) sync_->set_sync(micro == plan_.micro_batches - 1);
    modeling::LossMap loss_map;
    {
      ops::AutocastGuard autocast(autocast_, device_.type(), autocast_dtype_);
      loss_map = model_->forward(device_.is_cpu() ? *batch : batch->to(device_));
    }
    torch::Tensor total;
    for (const auto& [name, loss] : loss_map) {
      total = total.defined() ? total + loss.to(torch::kFloat) : loss.to(torch::kFloat);
    }
    (total * (scaler_->scale() / static_cast<double>(plan_.micro_batches))).backward();
    for (const auto& [name, loss] : loss_map) {
      auto value = loss.detach().to(torch::kDouble);
      auto& sum = loss_sums[name];
      sum = sum.defined() ? sum + value : value;
    }
  }
  if (sync_) sync_->finish();

  // The losses reach the host once per step (each .item() would wait for the GPU).
  std::map<std::string, double> losses;
  bool finite = true;
  {
    std::vector<torch::Tensor> sums;
    for (const auto& [name, sum] : loss_sums) sums.push_back(sum);
    const auto values = torch::stack(sums).to(torch::kCPU);
    size_t i = 0;
    double total = 0;
    for (const auto& [name, sum] : loss_sums) {
      const double mean = values[static_cast<int64_t>(i++)].item<double>() /
                          static_cast<double>(plan_.micro_batches);
      losses[name] = mean;
      total += mean;
      if (!std::isfinite(mean)) {
        finite = false;
        bad_losses_.insert(name);
      }
    }
    losses["total_loss"] = total;
  }

  // fp16: gradients back to their true scale; an overflow anywhere skips the step.
  bool overflow = false;
  if (scaler_->enabled()) {
    const double inverse = 1.0 / scaler_->scale();
    std::vector<torch::Tensor> grads;
    for (auto& p : model_->parameters())
      if (p.grad().defined()) grads.push_back(p.grad());
    for (auto& g : grads) g.mul_(inverse);
    if (!grads.empty()) {
      auto finite_all = torch::stack([&] {
        std::vector<torch::Tensor> f;
        for (auto& g : grads) f.push_back(torch::isfinite(g).all());
        return f;
      }());
      overflow = !finite_all.all().item<bool>();
    }
  }

  // One small allreduce: did any rank see a non-finite loss, an overflow, or a stop signal?
  auto flags = torch::tensor(
      {finite ? 0.0 : 1.0, overflow ? 1.0 : 0.0, g_stop_signal != 0 ? 1.0 : 0.0}, torch::kDouble);
  distributed::all_reduce_sum(flags, group_.get());
  const bool any_bad = flags[0].item<double>() > 0;
  const bool any_overflow = flags[1].item<double>() > 0;
  stop_requested_ = flags[2].item<double>() > 0;

  if (any_bad) {
    ++result_.skipped_steps;
    ++bad_in_a_row_;
    std::string names;
    for (const auto& n : bad_losses_) names += (names.empty() ? "" : ", ") + n;
    if (names.empty()) names = "on another rank";
    log::warning() << "iteration " << iteration + 1 << ": non-finite loss (" << names
                   << "); step skipped (" << bad_in_a_row_ << " in a row)";
    if (bad_in_a_row_ >= max_bad_steps_) {
      throw Error("training diverged: " + std::to_string(bad_in_a_row_) +
                      " steps in a row had non-finite losses (" + names + ")",
                  "iteration " + std::to_string(iteration + 1),
                  "lower SOLVER.BASE_LR or lengthen SOLVER.WARMUP_ITERS (with LAMB, or set "
                  "SOLVER.MAX_GRAD_NORM); then --resume from the last checkpoint");
    }
    bad_losses_.clear();
    return;
  }
  bad_in_a_row_ = 0;
  bad_losses_.clear();
  if (scaler_->update(any_overflow)) {
    optimizer_->step();
  } else {
    ++result_.skipped_steps;
    log::info() << "iteration " << iteration + 1 << ": fp16 gradients overflowed; loss scale now "
                << scaler_->scale();
  }
  for (const auto& [name, value] : losses) period_.add(name, value);
  period_.add("data_time", data_time);
  period_.add("lr", optimizer_->param_groups()[0].options().get_lr());
}

void Trainer::log_period(int64_t iteration, double iteration_time) {
  auto scalars = period_.reduce(group_.get());
  if (scalars.empty()) return;
  const double global_batch = static_cast<double>(plan_.per_rank) * world_;
  scalars["time"] = iteration_time;
  scalars["images_per_second"] = global_batch / iteration_time;
  scalars["memory_mb"] = memory_mb(device_);
  run_and_agree(group_.get(), rank_ == 0, "writing metrics",
                [&] { metrics_->write(iteration, scalars); });
  if (rank_ == 0) last_logged_ = scalars;
}

void Trainer::evaluate(int64_t iteration) {
  auto scalars = evaluate_detector(*model_, config_, test_set_, device_);
  model_->train();
  run_and_agree(group_.get(), rank_ == 0, "writing metrics",
                [&] { metrics_->write(iteration, scalars); });
  if (rank_ == 0) result_.evaluation = scalars;
}

TrainResult Trainer::run() {
  resume_or_start();
  StopSignals signals;
  Progress progress(result_.start_iteration, max_iter_, rank_ == 0);
  log::info() << "training " << max_iter_ - result_.start_iteration << " iterations of "
              << plan_.per_rank * world_ << " images (" << world_ << " rank(s) x "
              << plan_.micro_batches << " micro-batch(es) x " << plan_.per_device << "), "
              << dataset_->size() << " training images, output in " << output_dir_;
  auto period_start = Clock::now();
  int64_t period_iterations = 0;
  for (int64_t iteration = result_.start_iteration; iteration < max_iter_; ++iteration) {
    step(iteration);
    const int64_t done = iteration + 1;
    result_.iteration = done;
    ++period_iterations;
    const bool last = done == max_iter_;
    const bool log_now = done % log_period_ == 0 || last || stop_requested_;
    if (log_now) {
      const double per_iteration = seconds(Clock::now() - period_start) / period_iterations;
      log_period(done, per_iteration);
      if (rank_ == 0 && !last_logged_.empty()) {
        progress.clear();
        std::ostringstream line;
        line << "iter " << done << "/" << max_iter_ << "  total_loss "
             << last_logged_["total_loss"];
        for (const auto& [name, value] : last_logged_)
          if (name.rfind("loss_", 0) == 0) line << "  " << name << " " << value;
        line << "  lr " << last_logged_["lr"] << "  " << per_iteration << " s/it  data "
             << last_logged_["data_time"] << " s  eta "
             << format_duration(progress.eta_seconds(done));
        log::info() << line.str();
      }
    }
    if (rank_ == 0) {
      std::ostringstream status;
      if (!last_logged_.empty()) status << "loss " << last_logged_["total_loss"];
      progress.update(done, status.str());
    }
    if ((checkpoint_period_ > 0 && done % checkpoint_period_ == 0) || last || stop_requested_)
      result_.last_checkpoint = save_checkpoint(done);
    if (stop_requested_) {
      progress.clear();
      result_.interrupted = true;
      log::info() << "stopped by a signal at iteration " << done
                  << "; continue with the same command and --resume";
      return result_;
    }
    if (eval_period_ > 0 && (done % eval_period_ == 0 || last)) evaluate(done);
    if (log_now) {  // the next period's timing starts after this one's checkpoint and evaluation
      period_start = Clock::now();
      period_iterations = 0;
    }
  }
  result_.bad_inputs = dataset_->bad_input->total();
  run_and_agree(group_.get(), rank_ == 0, "saving the final weights", [&] {
    modeling::save_weights(*model_, output_dir_ + "/model_final.safetensors");
    log::info() << "final weights: " << output_dir_ << "/model_final.safetensors; "
                << dataset_->bad_input->summary();
  });
  return result_;
}

}  // namespace

uint64_t step_seed(uint64_t seed, int64_t iteration, int rank, int micro_batch) {
  uint64_t s = data::mix_seed(seed, static_cast<uint64_t>(iteration));
  s = data::mix_seed(s, static_cast<uint64_t>(rank));
  return data::mix_seed(s, static_cast<uint64_t>(micro_batch));
}

TrainResult train(const Config& config, const TrainOptions& options) {
  Trainer trainer(config, options);
  return trainer.run();
}

}  // namespace largedet::engine
