#include "largedet/engine/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/core/run_lock.h"
#include "largedet/data/build.h"
#include "largedet/data/device_prefetcher.h"
#include "largedet/data/loader.h"
#include "largedet/data/seed.h"
#include "largedet/distributed/collectives.h"
#include "largedet/distributed/gradient_sync.h"
#include "largedet/engine/agreement.h"
#include "largedet/engine/checkpointer.h"
#include "largedet/engine/loss_scaler.h"
#include "largedet/engine/metrics_writer.h"
#include "largedet/engine/runtime.h"
#include "largedet/ops/autocast.h"
#include "largedet/ops/host_sync.h"
#include "largedet/solver/agvm.h"
#include "largedet/solver/build.h"
#include "largedet/solver/gradient_clipping.h"

namespace largedet::engine {

namespace {

using Clock = std::chrono::steady_clock;

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

int64_t checked_max_iter(const Config& config) {
  const auto max_iter = config.get<int64_t>("SOLVER.MAX_ITER");
  LARGEDET_CHECK(max_iter > 0, "SOLVER.MAX_ITER must be positive (",
                 config.source("SOLVER.MAX_ITER"), ")");
  return max_iter;
}

void warn_about_detectron2_defaults(const Config& recipe) {
  if (recipe.source("VERSION") == "default") return;
  const auto differences = recipe.detectron2_differences();
  if (differences.empty()) return;
  auto warning = log::warning();
  warning << "this detectron2 recipe (VERSION " << recipe.get<int>("VERSION") << ") relies on "
          << differences.size()
          << " defaults where LargeDet keeps torchvision's behaviour (set them to get "
             "detectron2's):";
  for (const auto& d : differences) warning << "\n  " << d;
}

// The norm layers that normalise over a batch, and over how many images: SyncBN spans the ranks
// but never the micro-batches of gradient accumulation (docs/distributed.md, "SyncBN").
void log_batch_norm_group(const Config& config, const BatchPlan& plan, int world_size) {
  const auto norm = config.get<std::string>("MODEL.RESNETS.NORM");
  if (norm == "SyncBN") {
    log::info() << "SyncBN normalises over " << world_size * plan.per_device << " images ("
                << world_size << " rank(s) x SOLVER.IMS_PER_DEVICE " << plan.per_device << ")"
                << (plan.micro_batches > 1
                        ? ", not the global batch of " + std::to_string(plan.per_rank * world_size)
                        : std::string());
  } else if (norm == "BN" && world_size > 1) {
    log::warning() << "MODEL.RESNETS.NORM is BN on " << world_size
                   << " ranks: each normalises over its micro-batches of " << plan.per_device
                   << " images and keeps its own running statistics (checkpoints hold rank 0's); "
                      "SyncBN normalises over the ranks together";
  }
}

// AGVM over the detector's parts (DetectorImpl::parts()), its first estimate at
// SOLVER.AGVM.START_ITER or, when null, where warmup ends.
std::unique_ptr<solver::Agvm> build_agvm(const Config& config, modeling::DetectorImpl& model) {
  std::vector<std::string> names;
  std::vector<std::vector<torch::Tensor>> params;
  size_t counted = 0;
  for (const auto& part : model.parts()) {
    names.push_back(part.name);
    params.emplace_back();
    for (const auto& module : part.modules)
      for (const auto& p : module->parameters())
        if (p.requires_grad()) params.back().push_back(p);
    counted += params.back().size();
  }
  size_t trainable = 0;
  for (const auto& p : model.parameters()) trainable += p.requires_grad() ? 1 : 0;
  LARGEDET_CHECK(counted == trainable, "AGVM: the detector's parts hold ", counted, " of its ",
                 trainable, " trainable parameters (DetectorImpl::parts() must cover them all)");
  const int64_t start = config.is_null("SOLVER.AGVM.START_ITER")
                            ? config.get<int64_t>("SOLVER.WARMUP_ITERS")
                            : config.get<int64_t>("SOLVER.AGVM.START_ITER");
  auto options = solver::AgvmOptions()
                     .momentum(config.get<double>("SOLVER.AGVM.MOMENTUM"))
                     .interval(config.get<int64_t>("SOLVER.AGVM.INTERVAL"))
                     .start_iter(start);
  auto agvm = std::make_unique<solver::Agvm>(names, params, options);
  std::ostringstream line;
  line << "AGVM over";
  for (size_t k = 0; k < names.size(); ++k)
    line << " " << names[k] << " (" << params[k].size() << ")";
  line << ": estimates every " << options.interval() << " iterations from iteration " << start
       << ", momentum " << options.momentum();
  log::info() << line.str();
  return agvm;
}

// How many of this rank's micro-batches belong to AGVM's half A (docs/solver.md, "AGVM"): the
// first half of every rank's micro-batches when their count is even (the first half of the
// global batch in the loader's order, whatever the world size), else all of the first half of
// the ranks' micro-batches.
int64_t agvm_half_micro_batches(const Config& config, const BatchPlan& plan, int rank, int world) {
  if (plan.micro_batches % 2 == 0) return plan.micro_batches / 2;
  if (world % 2 == 0) return rank < world / 2 ? plan.micro_batches : 0;
  throw Error("AGVM compares two halves of the global batch, but " + std::to_string(world) +
                  " rank(s) x " + std::to_string(plan.micro_batches) +
                  " micro-batch(es) cannot be split in two",
              "SOLVER.AGVM.ENABLED (" + config.source("SOLVER.AGVM.ENABLED") + ")",
              "use an even number of micro-batches per rank (SOLVER.IMS_PER_DEVICE) or of ranks");
}

}  // namespace

struct Trainer::State {
  explicit State(const Config& recipe) : config(recipe) {}
  Config config;
  std::string output_dir;
  std::unique_ptr<RunLock> lock;  // rank 0's, on output_dir, for the Trainer's lifetime
  TrainOptions options;
  std::shared_ptr<distributed::ProcessGroup> group;
  int rank = 0, world = 1;
  c10::Device device{c10::kCPU};
  BatchPlan plan;
  uint64_t seed = 0;
  int64_t max_iter = 0;
  int64_t iteration = 0;
  std::shared_ptr<modeling::DetectorImpl> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<solver::LRScheduler> scheduler;
  std::unique_ptr<LossScaler> scaler;
  std::optional<solver::GradientClippingOptions> clipping;
  std::unique_ptr<solver::Agvm> agvm;   // SOLVER.AGVM.ENABLED
  std::vector<int> group_parts;         // AGVM's part of each optimizer group
  int64_t agvm_half_micro_batches = 0;  // this rank's micro-batches in AGVM's half A
  bool autocast = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
  std::unique_ptr<distributed::GradientSync> sync;
  std::shared_ptr<data::Dataset> dataset;
  std::unique_ptr<data::DataLoader> loader;
  std::unique_ptr<data::DevicePrefetcher> prefetcher;  // the loader's batches on the device
  std::unique_ptr<Checkpointer> checkpointer;
  std::unique_ptr<MetricsWriter> metrics;
  std::vector<std::shared_ptr<HookBase>> hooks;
  StepOutcome last_step;
  bool stop_requested = false;  // by this rank, for the next agreement
  bool stopping = false;        // agreed by all ranks
  bool trained = false;
  TrainResult result;
};

Trainer::Trainer(const Config& recipe, const TrainOptions& options)
    : s_(std::make_unique<State>(recipe)) {
  State& s = *s_;
  s.output_dir =
      options.output_dir.empty() ? recipe.get<std::string>("OUTPUT_DIR") : options.output_dir;
  s.options = options;
  const Runtime runtime = setup_runtime(recipe);
  s.group = runtime.group;
  s.rank = runtime.rank();
  s.world = runtime.world_size();
  s.device = runtime.device;
  // Once per job: every rank reads the same recipe.
  if (s.rank == 0) warn_about_detectron2_defaults(recipe);
  for (const auto& note : resolve_recipe(s.config, s.world)) log::info() << note;
  const Config& config = s.config;
  s.plan = plan_batches(config, s.world);
  s.seed = static_cast<uint64_t>(config.get<int64_t>("SEED"));
  s.max_iter = checked_max_iter(config);

  make_directories(s.output_dir, "the output directory");
  // Before anything is written there: a second run into this directory is refused.
  run_and_agree(s.group.get(), s.rank == 0, "locking " + s.output_dir,
                [&] { s.lock = std::make_unique<RunLock>(s.output_dir, "train"); });
  s.checkpointer =
      std::make_unique<Checkpointer>(s.output_dir, config.get<int>("SOLVER.CHECKPOINTS_KEPT"));

  s.dataset = data::build_dataset(config, /*train=*/true);
  const std::string classes_key = modeling::num_classes_key(config);
  if (s.dataset->num_classes() != config.get<int64_t>(classes_key)) {
    throw Error("the training set has " + std::to_string(s.dataset->num_classes()) +
                    " classes but " + classes_key + " is " +
                    std::to_string(config.get<int64_t>(classes_key)),
                config.source(classes_key), "set " + classes_key + " to the dataset's count");
  }
  log_batch_norm_group(config, s.plan, s.world);

  torch::manual_seed(s.seed);
  s.model = modeling::build_detector(config);
  const auto weights = config.get<std::string>("MODEL.WEIGHTS");
  if (!weights.empty()) {
    auto report = modeling::load_weights(*s.model, weights, /*strict=*/false);
    log::info() << "initial weights from " << weights << (report.ok() ? "" : ": " + report.str());
  }
  s.model->to(s.device);
  s.model->train();

  auto group_options = solver::param_group_options_from_config(config);
  if (config.get<bool>("SOLVER.AGVM.ENABLED")) {
    s.agvm = build_agvm(config, *s.model);
    s.agvm_half_micro_batches = agvm_half_micro_batches(config, s.plan, s.rank, s.world);
    group_options.part_of = [agvm = s.agvm.get()](const torch::Tensor& p) {
      return agvm->part_of(p);
    };
  }
  const auto groups = solver::make_param_groups(*s.model, group_options);
  for (const auto& group : groups) s.group_parts.push_back(group.part);
  s.optimizer = solver::build_optimizer(config, groups);
  s.scheduler =
      std::make_unique<solver::LRScheduler>(solver::build_lr_scheduler(config, *s.optimizer));
  s.clipping = solver::gradient_clipping_from_config(config);

  const bool amp = config.get<bool>("SOLVER.AMP.ENABLED");
  const auto amp_dtype = config.get<std::string>("SOLVER.AMP.DTYPE");
  LARGEDET_CHECK(amp_dtype == "bf16" || amp_dtype == "fp16", "SOLVER.AMP.DTYPE is \"", amp_dtype,
                 "\" (", config.source("SOLVER.AMP.DTYPE"), "); use bf16 or fp16");
  if (amp && amp_dtype == "fp16" && !s.device.is_cuda()) {
    throw Error("fp16 mixed precision needs CUDA; this run is on " + s.device.str(),
                "SOLVER.AMP.DTYPE (" + config.source("SOLVER.AMP.DTYPE") + ")",
                "use SOLVER.AMP.DTYPE=bf16 (CPU autocast) or SOLVER.AMP.ENABLED=false");
  }
  s.autocast = amp;
  s.autocast_dtype = amp_dtype == "fp16" ? at::kHalf : at::kBFloat16;
  LossScalerOptions scaler_options;
  scaler_options.init_scale = config.get<double>("SOLVER.AMP.INIT_SCALE");
  scaler_options.growth_interval = config.get<int64_t>("SOLVER.AMP.GROWTH_INTERVAL");
  s.scaler = std::make_unique<LossScaler>(amp && s.autocast_dtype == at::kHalf, scaler_options);

  register_hooks(default_hooks(*this));
}

Trainer::~Trainer() = default;

void Trainer::register_hooks(const std::vector<std::shared_ptr<HookBase>>& hooks) {
  for (const auto& hook : hooks) {
    LARGEDET_CHECK(hook != nullptr, "Trainer::register_hooks: a hook is null");
    s_->hooks.push_back(hook);
  }
}

const Config& Trainer::config() const { return s_->config; }
const std::string& Trainer::output_dir() const { return s_->output_dir; }
int Trainer::rank() const { return s_->rank; }
int Trainer::world_size() const { return s_->world; }
distributed::ProcessGroup* Trainer::group() const { return s_->group.get(); }
const c10::Device& Trainer::device() const { return s_->device; }
const BatchPlan& Trainer::batch_plan() const { return s_->plan; }
uint64_t Trainer::seed() const { return s_->seed; }
int64_t Trainer::iteration() const { return s_->iteration; }
int64_t Trainer::start_iteration() const { return s_->result.start_iteration; }
int64_t Trainer::max_iter() const { return s_->max_iter; }
const StepOutcome& Trainer::last_step() const { return s_->last_step; }
std::shared_ptr<const data::Dataset> Trainer::dataset() const { return s_->dataset; }
modeling::DetectorImpl& Trainer::model() { return *s_->model; }
torch::optim::Optimizer& Trainer::optimizer() { return *s_->optimizer; }
solver::LRScheduler& Trainer::scheduler() { return *s_->scheduler; }
TrainResult& Trainer::result() { return s_->result; }
void Trainer::request_stop() { s_->stop_requested = true; }
bool Trainer::stopping() const { return s_->stopping; }
void Trainer::stop_agreed() { s_->stopping = true; }

namespace {

// Where a run starts, decided on rank 0 (docs/engine.md, "Checkpoints"): --resume takes the
// newest checkpoint that verifies; a run never starts from scratch over checkpoints unless told
// to (--from-scratch), and then it moves them aside instead of overwriting them.
std::optional<std::string> choose_start(const Checkpointer& checkpointer,
                                        const std::string& output_dir,
                                        const TrainOptions& options) {
  const RemovedFiles stale = remove_stale_temporaries(output_dir);
  if (stale.count > 0)
    log::info() << "removed " << stale.count << " temporary file(s) of interrupted saves ("
                << (stale.bytes >> 20) << " MB) from " << output_dir;
  const std::vector<std::string> existing = checkpointer.list();
  if (existing.empty()) {
    if (options.resume)
      log::info() << "no checkpoint in " << output_dir << ": starting from scratch";
    return std::nullopt;
  }
  if (options.from_scratch) {
    log::warning() << "starting from scratch: the " << existing.size()
                   << " checkpoint(s) already in " << output_dir << " moved to "
                   << checkpointer.set_aside();
    return std::nullopt;
  }
  if (!options.resume)
    throw Error("the run directory already holds checkpoints (newest " + existing.front() + ")",
                output_dir,
                "add --resume to continue that run, --from-scratch to start over (its "
                "checkpoints are moved aside), or choose another --output");
  std::vector<std::string> skipped;
  std::optional<std::string> chosen = checkpointer.newest_intact(&skipped);
  for (const auto& why : skipped) log::warning() << "not resuming from " << why;
  if (!chosen)
    throw Error("none of the " + std::to_string(existing.size()) +
                    " checkpoints verifies (the reasons are logged above)",
                output_dir, "restore one from a copy, or pass --from-scratch to start over");
  return chosen;
}

// Rank 0 chooses and tells the others, so that all ranks resume from the same iteration even
// where their views of the directory differ; each rank then loads it itself.
std::optional<std::string> checkpoint_to_resume(const Checkpointer& checkpointer,
                                                const std::string& output_dir,
                                                const TrainOptions& options, int rank,
                                                distributed::ProcessGroup* group) {
  std::optional<std::string> chosen;
  run_and_agree(group, rank == 0, "choosing where to start in " + output_dir,
                [&] { chosen = choose_start(checkpointer, output_dir, options); });
  auto iteration =
      torch::full({1}, chosen ? static_cast<double>(iteration_of(*chosen)) : -1.0, torch::kDouble);
  distributed::broadcast(iteration, 0, group);
  const auto resumed = static_cast<int64_t>(iteration.item<double>());
  if (resumed < 0) return std::nullopt;
  return checkpoint_path(output_dir, resumed);
}

}  // namespace

void Trainer::resume_or_start() {
  State& s = *s_;
  if (auto path =
          checkpoint_to_resume(*s.checkpointer, s.output_dir, s.options, s.rank, s.group.get())) {
    run_and_agree(s.group.get(), true, "loading " + *path, [&] {
      Checkpoint checkpoint = Checkpointer::load(*path);
      modeling::load_state_dict(*s.model, checkpoint.model, /*strict=*/true, *path);
      auto state = [&](const std::string& name) -> const std::string& {
        auto it = checkpoint.state.find(name);
        if (it == checkpoint.state.end())
          throw Error("the checkpoint has no " + name + " state", *path,
                      "was it written by train?");
        return it->second;
      };
      // The optimizer's state tensors come back on this rank's device (rank 0 saved them from
      // its own, and a GPU run may resume on the CPU).
      load_archive(state("optimizer"), s.device, [&](auto& a) { s.optimizer->load(a); });
      load_archive(state("scheduler"), c10::Device(c10::kCPU),
                   [&](auto& a) { s.scheduler->load(a); });
      s.scaler->load_state(state("scaler"));
      if (s.agvm) {
        auto agvm = checkpoint.state.find("agvm");
        if (agvm != checkpoint.state.end())
          s.agvm->load_state(agvm->second);
        else
          log::warning() << *path << " was written without AGVM: its factors start at 1";
      }
      const std::string& rng = state("rng/cpu");
      auto rng_state = torch::empty({static_cast<int64_t>(rng.size())}, torch::kByte);
      std::memcpy(rng_state.data_ptr(), rng.data(), rng.size());
      at::Generator generator = at::detail::getDefaultCPUGenerator();
      generator.set_state(rng_state);
      s.result.start_iteration = checkpoint.iteration;
      auto saved_config = checkpoint.metadata.find("config");
      if (saved_config != checkpoint.metadata.end() && saved_config->second != s.config.dump()) {
        const auto changed = config_differences(saved_config->second, s.config.dump());
        std::string listed;
        for (size_t i = 0; i < changed.size() && i < 8; ++i) listed += "\n  " + changed[i];
        if (changed.size() > 8)
          listed += "\n  ... and " + std::to_string(changed.size() - 8) + " more";
        log::warning() << "the configuration differs from the one " << *path
                       << " was trained with (" << changed.size() << " key(s)):" << listed;
      }
      auto consumed = checkpoint.metadata.find("batches_consumed_per_rank");
      if (consumed != checkpoint.metadata.end() &&
          std::stoll(consumed->second) != checkpoint.iteration * s.plan.micro_batches) {
        log::warning() << "the checkpoint was written with " << consumed->second
                       << " batches per rank consumed, this run counts "
                       << checkpoint.iteration * s.plan.micro_batches
                       << " (world size or SOLVER.IMS_PER_DEVICE changed): the data order "
                          "differs from an uninterrupted run";
      }
      log::info() << "resumed from " << *path << " at iteration " << checkpoint.iteration;
    });
  }
  s.result.iteration = s.result.start_iteration;
  if (s.world > 1) {
    distributed::GradientSyncOptions options;
    options.bucket_size_bytes(s.config.get<int64_t>("DISTRIBUTED.BUCKET_SIZE_MB") << 20);
    s.sync = std::make_unique<distributed::GradientSync>(*s.model, s.group, options);
  }
  s.loader = data::build_train_loader(s.config, s.dataset, s.rank, s.world,
                                      s.result.start_iteration * s.plan.micro_batches);
  s.prefetcher =
      std::make_unique<data::DevicePrefetcher>([&s] { return s.loader->next(); }, s.device);
  run_and_agree(s.group.get(), s.rank == 0, "writing to " + s.output_dir, [&] {
    // Lines past the checkpoint come from a run that crashed after it: they are redone now.
    MetricsWriter::drop_after(s.output_dir, s.result.start_iteration);
    s.metrics = std::make_unique<MetricsWriter>(s.output_dir);
    write_file_atomic(s.output_dir + "/config.yaml", s.config.dump());
  });
}

std::string Trainer::save_checkpoint() {
  State& s = *s_;
  const int64_t iteration = s.iteration + 1;
  std::string path;
  run_and_agree(s.group.get(), s.rank == 0, "saving the checkpoint", [&] {
    Checkpoint checkpoint;
    checkpoint.iteration = iteration;
    for (auto& [name, tensor] : modeling::state_dict(*s.model))
      checkpoint.model.emplace(name, tensor.detach().to(torch::kCPU).contiguous());
    checkpoint.state["optimizer"] = archive_bytes([&](auto& a) { s.optimizer->save(a); });
    checkpoint.state["scheduler"] = archive_bytes([&](auto& a) { s.scheduler->save(a); });
    checkpoint.state["scaler"] = s.scaler->state();
    if (s.agvm) checkpoint.state["agvm"] = s.agvm->state();
    checkpoint.state["rng/cpu"] = tensor_bytes(at::detail::getDefaultCPUGenerator().get_state());
    checkpoint.metadata["config"] = s.config.dump();
    checkpoint.metadata["batches_consumed_per_rank"] =
        std::to_string(iteration * s.plan.micro_batches);
    path = s.checkpointer->save(checkpoint);
    log::info() << "saved " << path;
  });
  s.result.last_checkpoint = path;
  return path;
}

void Trainer::write_metrics(int64_t iteration, const std::map<std::string, double>& scalars) {
  State& s = *s_;
  run_and_agree(s.group.get(), s.rank == 0, "writing metrics",
                [&] { s.metrics->write(iteration, scalars); });
}

modeling::LossMap Trainer::forward(const data::Batch& batch, uint64_t seed) {
  State& s = *s_;
  s.model->reseed(seed);
  ops::AutocastGuard autocast(s.autocast, s.device.type(), s.autocast_dtype);
  // The training loop's batches are on the device already (the prefetcher); a hook's own may not.
  const bool there = batch.images.device() == s.device;
  return s.model->forward(there ? batch : batch.to(s.device));
}

void Trainer::run_step() {
  State& s = *s_;
  StepOutcome outcome;
  s.optimizer->zero_grad(/*set_to_none=*/false);
  std::map<std::string, torch::Tensor> loss_sums;  // over micro-batches, on the device
  // AGVM's estimate needs this rank's gradient of half A before the ranks' gradients are summed.
  const bool estimate = s.agvm && s.agvm->estimates_at(s.iteration);
  std::vector<torch::Tensor> half_a;
  auto snapshot_half_a = [&] {
    for (const auto& p : s.agvm->params())
      half_a.push_back(p.grad().defined() ? p.grad().detach().clone() : torch::zeros_like(p));
  };
  if (estimate && s.agvm_half_micro_batches == 0) snapshot_half_a();
  for (int64_t micro = 0; micro < s.plan.micro_batches; ++micro) {
    const auto data_start = Clock::now();
    auto batch = s.prefetcher->next();
    LARGEDET_CHECK(batch.has_value(), "the training loader ended (it should never)");
    outcome.data_time += std::chrono::duration<double>(Clock::now() - data_start).count();
    if (s.sync) s.sync->set_sync(!estimate && micro == s.plan.micro_batches - 1);
    const modeling::LossMap loss_map =
        forward(*batch, step_seed(s.seed, s.iteration, micro * s.world + s.rank));
    torch::Tensor total;
    for (const auto& [name, loss] : loss_map)
      total = total.defined() ? total + loss.to(torch::kFloat) : loss.to(torch::kFloat);
    (total * (s.scaler->scale() / static_cast<double>(s.plan.micro_batches))).backward();
    for (const auto& [name, loss] : loss_map) {
      auto value = loss.detach().to(torch::kDouble);
      auto& sum = loss_sums[name];
      sum = sum.defined() ? sum + value : value;
    }
    if (estimate && micro + 1 == s.agvm_half_micro_batches) snapshot_half_a();
  }
  if (s.sync) s.sync->finish();
  const torch::Tensor agreement = estimate ? agvm_agreement(half_a) : torch::Tensor();

  std::vector<torch::Tensor> grads;
  for (auto& p : s.model->parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  // fp16: gradients back to their true scale, and whether any overflowed, on the device.
  const torch::Tensor found_inf = s.scaler->unscale_(grads);

  // Whether any rank saw a non-finite loss or an overflow, or asks to stop: one small allreduce
  // on the step's device, before the read, so that under NCCL it only orders streams and the step
  // waits on the host once (docs/distributed.md, "Counting the host waits").
  std::vector<torch::Tensor> losses;
  for (const auto& [name, sum] : loss_sums) losses.push_back(sum.reshape({1}));
  const torch::Tensor loss_values = torch::cat(losses);
  const torch::Tensor stop_here = ops::upload(
      torch::tensor({s.stop_requested ? 1.0 : 0.0}, torch::kDouble), s.device, "trainer: stop");
  torch::Tensor flags =
      torch::cat({loss_values.isfinite().logical_not().any().to(torch::kDouble).reshape({1}),
                  found_inf.to(s.device, torch::kDouble).reshape({1}), stop_here});
  distributed::all_reduce_sum(flags, s.group.get());

  // The step's one host read: the losses and the agreed flags together.
  std::vector<torch::Tensor> sums{loss_values, flags};
  if (estimate) sums.push_back(agreement);  // AGVM's estimate in the same read
  const auto values = ops::read_to_host(torch::cat(sums), "trainer: losses and agreed flags");
  const double* read = values.data_ptr<double>();
  double total = 0;
  for (const auto& [name, sum] : loss_sums) {
    const double mean = *read++ / static_cast<double>(s.plan.micro_batches);
    outcome.losses[name] = mean;
    total += mean;
    if (!std::isfinite(mean)) outcome.non_finite.insert(name);
  }
  outcome.losses["total_loss"] = total;
  outcome.any_non_finite = *read++ > 0;
  outcome.overflow = *read++ > 0;
  s.stopping = *read++ > 0;
  std::vector<double> variances;
  if (estimate)
    variances =
        s.agvm->variances(values.narrow(0, read - values.data_ptr<double>(), agreement.numel()));
  outcome.lr = s.optimizer->param_groups()[0].options().get_lr();

  if (outcome.any_non_finite) {
    ++s.result.skipped_steps;
  } else if (s.scaler->update(outcome.overflow)) {
    if (s.clipping) solver::clip_gradients(grads, *s.clipping);
    if (estimate) s.agvm->update(variances);
    optimizer_step();
    outcome.stepped = true;
  } else {
    ++s.result.skipped_steps;
    log::info() << "iteration " << s.iteration + 1 << ": fp16 gradients overflowed; loss scale now "
                << s.scaler->scale();
  }
  s.last_step = std::move(outcome);
  if (estimate) write_agvm_metrics(variances);
}

torch::Tensor Trainer::agvm_agreement(std::vector<torch::Tensor>& half_a) {
  State& s = *s_;
  if (s.world > 1) {
    // Every rank's share of half A, summed as GradientSync averages: one flat allreduce.
    std::vector<torch::Tensor> flat;
    for (const auto& g : half_a) flat.push_back(g.reshape(-1));
    auto all = torch::cat(flat);
    distributed::all_reduce_mean(all, s.group.get());
    int64_t offset = 0;
    for (auto& g : half_a) {
      g = all.narrow(0, offset, g.numel()).view(g.sizes());
      offset += g.numel();
    }
  }
  return s.agvm->agreement(half_a);
}

void Trainer::optimizer_step() {
  State& s = *s_;
  if (!s.agvm) {
    s.optimizer->step();
    return;
  }
  // Each group's LR times its part's factor for this step only: the schedule keeps its own.
  auto& groups = s.optimizer->param_groups();
  std::vector<double> lrs;
  for (size_t i = 0; i < groups.size(); ++i) {
    auto& options = groups[i].options();
    lrs.push_back(options.get_lr());
    options.set_lr(lrs.back() * s.agvm->factors()[static_cast<size_t>(s.group_parts[i])]);
  }
  s.optimizer->step();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lrs[i]);
}

void Trainer::write_agvm_metrics(const std::vector<double>& variances) {
  State& s = *s_;
  std::map<std::string, double> scalars;
  for (size_t k = 0; k < variances.size(); ++k) {
    scalars["agvm/" + s.agvm->names()[k] + "/variance"] = variances[k];
    scalars["agvm/" + s.agvm->names()[k] + "/factor"] = s.agvm->factors()[k];
  }
  write_metrics(s.iteration + 1, scalars);
}

TrainResult Trainer::train() {
  State& s = *s_;
  LARGEDET_CHECK(!s.trained, "Trainer::train() runs once; build a new Trainer to train again");
  s.trained = true;
  resume_or_start();
  log::info() << "training " << s.max_iter - s.result.start_iteration << " iterations of "
              << s.plan.per_rank * s.world << " images (" << s.world << " rank(s) x "
              << s.plan.micro_batches << " micro-batch(es) x " << s.plan.per_device << "), "
              << s.dataset->size() << " training images, output in " << s.output_dir;
  for (auto& hook : s.hooks) hook->before_train(*this);
  s.iteration = s.result.start_iteration;
  for (; s.iteration < s.max_iter && !s.stopping; ++s.iteration) {
    for (auto& hook : s.hooks) hook->before_step(*this);
    run_step();
    s.result.iteration = s.iteration + 1;
    for (auto& hook : s.hooks) hook->after_step(*this);
    if (s.stopping) {
      ++s.iteration;
      break;
    }
  }
  s.result.interrupted = s.stopping;
  s.result.bad_inputs = s.dataset->bad_input->total();
  for (auto& hook : s.hooks) hook->after_train(*this);
  return s.result;
}

uint64_t step_seed(uint64_t seed, int64_t iteration, int64_t forward) {
  uint64_t s = data::mix_seed(seed, static_cast<uint64_t>(iteration));
  s = data::mix_seed(s, 0);  // one process draws as when the rank was mixed in apart
  return data::mix_seed(s, static_cast<uint64_t>(forward));
}

void check_recipe(const Config& config, int world_size) {
  plan_batches(config, world_size);
  checked_max_iter(config);
  data::check_input_sizes(config);
  torch::NoGradGuard no_grad;
  modeling::build_detector(config);
}

TrainResult train(const Config& config, const TrainOptions& options) {
  Trainer trainer(config, options);
  return trainer.train();
}

}  // namespace largedet::engine
