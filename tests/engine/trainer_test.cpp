// End-to-end trainer runs on CPU with a tiny detector: one rank in-process, two ranks through
// `largedet launch`, resume exactness, the NaN guard, signals, bad input and config errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "largedet/core/error.h"
#include "largedet/engine/checkpointer.h"
#include "largedet/engine/evaluator.h"
#include "largedet/engine/trainer.h"
#include "largedet/ops/host_sync.h"
#include "largedet/tensor/safetensors.h"
#include "train_fixture.h"

namespace {

using largedet::test::quote;
using largedet::test::read_text;
using largedet::test::run_shell;
using largedet::test::TempDir;
using largedet::test::tiny_config;
using largedet::test::write_tiny_recipe;

std::vector<nlohmann::json> metrics_lines(const std::string& run_dir) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

void expect_same_tensors(const std::string& a, const std::string& b) {
  auto x = largedet::safetensors::load(a).tensors;
  auto y = largedet::safetensors::load(b).tensors;
  ASSERT_EQ(x.size(), y.size());
  for (const auto& [name, tensor] : x) {
    ASSERT_TRUE(y.count(name)) << name;
    EXPECT_TRUE(tensor.equal(y.at(name))) << name << " differs";
  }
}

TEST(Trainer, OneRankTrainsLogsCheckpointsAndEvaluates) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run";
  largedet::engine::TrainOptions options;
  options.output_dir = run;
  auto result = largedet::engine::train(tiny_config(recipe, {"TEST.EVAL_PERIOD=4"}), options);
  EXPECT_EQ(result.iteration, 4);
  EXPECT_FALSE(result.interrupted);
  EXPECT_EQ(result.skipped_steps, 0);
  EXPECT_EQ(result.bad_inputs, 0);
  ASSERT_TRUE(result.evaluation.count("bbox/AP"));
  EXPECT_GE(result.evaluation.at("bbox/AP"), 0.0);

  auto lines = metrics_lines(run);
  ASSERT_EQ(lines.size(), 3u);  // iterations 2 and 4, then the evaluation at 4
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(lines[i]["iteration"], 2 * (i + 1));
    for (const char* key : {"lr", "total_loss", "loss_cls", "loss_box_reg", "loss_rpn_cls",
                            "loss_rpn_loc", "data_time", "time", "images_per_second", "memory_mb"})
      EXPECT_TRUE(lines[i].contains(key)) << key;
    const double sum = lines[i]["loss_cls"].get<double>() + lines[i]["loss_box_reg"].get<double>() +
                       lines[i]["loss_rpn_cls"].get<double>() +
                       lines[i]["loss_rpn_loc"].get<double>();
    EXPECT_NEAR(lines[i]["total_loss"].get<double>(), sum, 1e-6);
  }
  EXPECT_EQ(lines[2]["iteration"], 4);
  EXPECT_DOUBLE_EQ(lines[2]["bbox/AP"].get<double>(), result.evaluation.at("bbox/AP"));

  // Checkpoints at 2 and 4 (both kept), the pointer, final weights, config and events.
  largedet::engine::Checkpointer checkpointer(run, 3);
  ASSERT_TRUE(checkpointer.last().has_value());
  EXPECT_EQ(*checkpointer.last(), run + "/model_0000004.safetensors");
  auto checkpoint = largedet::engine::Checkpointer::load(run + "/model_0000002.safetensors");
  EXPECT_EQ(checkpoint.iteration, 2);
  for (const char* state : {"optimizer", "scheduler", "scaler", "rng/cpu"})
    EXPECT_TRUE(checkpoint.state.count(state)) << state;
  EXPECT_NE(checkpoint.metadata["config"].find("pmd_lamb"), std::string::npos);
  EXPECT_EQ(::access((run + "/model_final.safetensors").c_str(), F_OK), 0);
  EXPECT_NE(read_text(run + "/config.yaml").find("IMS_PER_BATCH: 4"), std::string::npos);

  // `largedet evaluate --config --weights` scores the final weights exactly as training did.
  auto eval = run_shell(quote(LARGEDET_CLI) + " evaluate --config " + quote(recipe) +
                        " --weights " + quote(run + "/model_final.safetensors") + " --output " +
                        quote(dir.path() + "/stats.json"));
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("Average Precision"), std::string::npos) << eval.output;
  auto stats = nlohmann::json::parse(read_text(dir.path() + "/stats.json"));
  // The same layout as scoring files (evaluation/report.h); the detections beside it under
  // detectron2's name.
  EXPECT_DOUBLE_EQ(stats["bbox"]["AP"].get<double>(), result.evaluation.at("bbox/AP"));
  EXPECT_EQ(stats["bbox"].size(), 12u);
  EXPECT_FALSE(stats.contains("per_category"));
  EXPECT_FALSE(read_text(dir.path() + "/coco_instances_results.json").empty());

  // Pictures: detections drawn into PNGs (one per input image), and the run's curves.
  auto infer = run_shell(quote(LARGEDET_CLI) + " infer --config " + quote(recipe) + " --weights " +
                         quote(run + "/model_0000004.safetensors") + " --input " +
                         quote(dir.path() + "/data/val") + " --output " +
                         quote(dir.path() + "/pictures") + " --score-threshold 0");
  ASSERT_EQ(infer.code, 0) << infer.output;
  EXPECT_EQ(::access((dir.path() + "/pictures/000019.png").c_str(), F_OK), 0) << infer.output;
  EXPECT_NE(infer.output.find("detection(s) with score >= 0"), std::string::npos);
  // a.jpg and a.png of one folder give two pictures, not one overwritten by the other.
  const std::string collide = dir.path() + "/collide";
  ASSERT_EQ(run_shell("mkdir -p " + quote(collide) + " && cp " +
                      quote(dir.path() + "/data/val/000019.jpg") + " " + quote(collide + "/a.jpg") +
                      " && cp " + quote(dir.path() + "/data/val/000019.jpg") + " " +
                      quote(collide + "/a.png"))
                .code,
            0);
  const std::string infer_collide = quote(LARGEDET_CLI) + " infer --config " + quote(recipe) +
                                    " --weights " + quote(run + "/model_0000004.safetensors") +
                                    " --input " + quote(collide) + " --output " +
                                    quote(dir.path() + "/pictures2");
  infer = run_shell(infer_collide);
  ASSERT_EQ(infer.code, 0) << infer.output;
  EXPECT_EQ(::access((dir.path() + "/pictures2/a.jpg.png").c_str(), F_OK), 0) << infer.output;
  EXPECT_EQ(::access((dir.path() + "/pictures2/a.png.png").c_str(), F_OK), 0) << infer.output;
  // A threshold that is no score is refused before anything runs.
  infer = run_shell(infer_collide + " --score-threshold nan");
  EXPECT_NE(infer.code, 0);
  EXPECT_NE(infer.output.find("'nan' is not a number from 0 to 1"), std::string::npos)
      << infer.output;
  auto plot = run_shell(quote(LARGEDET_CLI) + " plot " + quote(run) + " --output " +
                        quote(dir.path() + "/curves.png"));
  ASSERT_EQ(plot.code, 0) << plot.output;
  EXPECT_EQ(::access((dir.path() + "/curves.png").c_str(), F_OK), 0);
}

// TensorBoard itself reads the scalars from the run directory's event file.
TEST(Trainer, TensorBoardReadsTheEventFile) {
  const auto probe = run_shell(quote(LARGEDET_PYTHON) + " -c 'import tensorboard'");
  if (probe.code != 0) {
    GTEST_SKIP() << "tensorboard is not importable by " << LARGEDET_PYTHON << ": " << probe.output;
  }
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run";
  largedet::engine::TrainOptions options;
  options.output_dir = run;
  largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=2", "TEST.EVAL_PERIOD=2"}),
                          options);
  const auto events = run_shell(
      quote(LARGEDET_PYTHON) + " " +
      quote(std::string(LARGEDET_SOURCE_DIR) + "/tests/engine/read_events.py") + " " + quote(run));
  ASSERT_EQ(events.code, 0) << events.output;
  for (const char* scalar :
       {"total_loss 2 ", "loss_cls 2 ", "loss_rpn_loc 2 ", "lr 2 ", "bbox/AP 2 "}) {
    EXPECT_NE(events.output.find(scalar), std::string::npos) << scalar << "not in:\n"
                                                             << events.output;
  }
}

// The console line prints the losses whose names start with loss_: RetinaNet's must be among them
// (detectron2's names, like the R-CNN ones). `largedet evaluate --config` on its weights takes
// --per-category and --threads as the file mode does.
TEST(Trainer, RetinaNetLossesReachTheConsoleAndEvaluateTakesItsFlags) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run";
  const auto train =
      run_shell(quote(LARGEDET_CLI) + " train --config " + quote(recipe) + " --output " +
                quote(run) + " MODEL.META_ARCHITECTURE=RetinaNet SOLVER.MAX_ITER=2");
  ASSERT_EQ(train.code, 0) << train.output;
  const auto at = train.output.find("iter 2/2");
  ASSERT_NE(at, std::string::npos) << train.output;
  const std::string line = train.output.substr(at, train.output.find('\n', at) - at);
  EXPECT_NE(line.find("  loss_cls "), std::string::npos) << line;
  EXPECT_NE(line.find("  loss_box_reg "), std::string::npos) << line;

  const auto eval =
      run_shell(quote(LARGEDET_CLI) + " --log-level debug evaluate --config " + quote(recipe) +
                " --weights " + quote(run + "/model_final.safetensors") +
                " --per-category --threads 3 MODEL.META_ARCHITECTURE=RetinaNet");
  ASSERT_EQ(eval.code, 0) << eval.output;
  EXPECT_NE(eval.output.find("Average Precision"), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("category_id  name"), std::string::npos) << eval.output;
  EXPECT_NE(eval.output.find("scoring bbox on 3 thread(s)"), std::string::npos) << eval.output;
}

TEST(Trainer, ResumedRunEndsBitIdentical) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions straight;
  straight.output_dir = dir.path() + "/straight";
  largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=5"}), straight);

  largedet::engine::TrainOptions stopped;
  stopped.output_dir = dir.path() + "/resumed";
  auto first = largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=3"}), stopped);
  EXPECT_EQ(first.iteration, 3);
  // As if the first run had crashed after logging iteration 4: the resumed run redoes it.
  std::ofstream(stopped.output_dir + "/metrics.jsonl", std::ios::app)
      << "{\"iteration\": 4, \"total_loss\": 9.0}\n";
  stopped.resume = true;
  auto second = largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=5"}), stopped);
  EXPECT_EQ(second.start_iteration, 3);
  EXPECT_EQ(second.iteration, 5);
  std::vector<int64_t> logged;
  for (const auto& line : metrics_lines(stopped.output_dir)) logged.push_back(line["iteration"]);
  EXPECT_EQ(logged, (std::vector<int64_t>{2, 3, 4, 5}));
  // Steps 4 and 5 use the restored moments, schedule, data position and sampler seeds: any
  // difference there would show in the weights.
  expect_same_tensors(dir.path() + "/straight/model_final.safetensors",
                      dir.path() + "/resumed/model_final.safetensors");
}

// A library user's hook, registered after the default ones, without any engine change.
class RecordingHook : public largedet::engine::HookBase {
 public:
  void before_train(largedet::engine::Trainer& trainer) override {
    events.push_back("before_train " + std::to_string(trainer.start_iteration()));
  }
  void before_step(largedet::engine::Trainer& trainer) override {
    events.push_back("before_step " + std::to_string(trainer.iteration()));
  }
  void after_step(largedet::engine::Trainer& trainer) override {
    const auto& step = trainer.last_step();
    events.push_back("after_step " + std::to_string(trainer.iteration()) +
                     (step.stepped ? " stepped" : " skipped"));
    total_losses.push_back(step.losses.at("total_loss"));
    if (trainer.iteration() == stop_after) trainer.request_stop();
  }
  void after_train(largedet::engine::Trainer& trainer) override {
    events.push_back(std::string("after_train") + (trainer.stopping() ? " stopping" : ""));
  }
  int64_t stop_after = -1;
  std::vector<std::string> events;
  std::vector<double> total_losses;
};

TEST(Trainer, LibraryHooksSeeEveryStepAndCanStopTheRun) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  largedet::engine::Trainer trainer(tiny_config(recipe, {"SOLVER.MAX_ITER=6"}), options);
  auto hook = std::make_shared<RecordingHook>();
  hook->stop_after =
      1;  // asked after iteration 1: agreed in iteration 2's step, which ends the run
  trainer.register_hooks({hook});
  const auto result = trainer.train();
  const std::vector<std::string> expected = {
      "before_train 0",       "before_step 0", "after_step 0 stepped", "before_step 1",
      "after_step 1 stepped", "before_step 2", "after_step 2 stepped", "after_train stopping"};
  EXPECT_EQ(hook->events, expected);
  for (double loss : hook->total_losses) EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;
  EXPECT_TRUE(result.interrupted);
  EXPECT_EQ(result.iteration, 3);
  EXPECT_EQ(result.last_checkpoint, largedet::engine::checkpoint_path(options.output_dir, 3));
  EXPECT_THROW(trainer.train(), largedet::Error);  // once per Trainer
}

// Raises `signal` in this process before step `at` (after the stop hook has looked), so that it
// arrives while that step's evaluation runs.
class SignalBeforeStep : public largedet::engine::HookBase {
 public:
  SignalBeforeStep(int64_t at, int signal) : at_(at), signal_(signal) {}
  void before_step(largedet::engine::Trainer& trainer) override {
    if (trainer.iteration() == at_) ::raise(signal_);
  }

 private:
  int64_t at_;
  int signal_;
};

// A SIGTERM during an evaluation stops it at the next batch instead of after the whole test set:
// the run checkpoints that iteration, records the evaluation as pending and stops with the signal;
// --resume evaluates that iteration before training on, so the metrics miss nothing.
TEST(Trainer, SigtermDuringEvaluationStopsItAndResumeRedoesIt) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  const std::vector<std::string> keys = {"SOLVER.MAX_ITER=4", "TEST.EVAL_PERIOD=3"};
  largedet::engine::TrainResult first;
  {  // the Trainer holds the directory's run lock until it goes
    largedet::engine::Trainer trainer(tiny_config(recipe, keys), options);
    trainer.register_hooks({std::make_shared<SignalBeforeStep>(2, SIGTERM)});
    first = trainer.train();
  }
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.stop_signal, SIGTERM);
  EXPECT_EQ(first.iteration, 3);
  EXPECT_EQ(first.last_checkpoint, largedet::engine::checkpoint_path(options.output_dir, 3));
  EXPECT_EQ(read_text(options.output_dir + "/evaluation_pending"), "3\n");
  auto evaluated = [&] {
    std::vector<int64_t> at;
    for (const auto& line : metrics_lines(options.output_dir))
      if (line.contains("bbox/AP")) at.push_back(line["iteration"]);
    return at;
  };
  EXPECT_TRUE(evaluated().empty());

  options.resume = true;
  const auto second = largedet::engine::train(tiny_config(recipe, keys), options);
  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(second.start_iteration, 3);
  EXPECT_EQ(second.iteration, 4);
  EXPECT_EQ(evaluated(), (std::vector<int64_t>{3, 4}));
  EXPECT_FALSE(std::filesystem::exists(options.output_dir + "/evaluation_pending"));
}

// SGD's first step with momentum moves the weights by lr x gradient, so full_model clipping at
// CLIP_VALUE makes the step's norm exactly lr x CLIP_VALUE; unclipped it is far larger. (No
// warmup, so that the step is large enough for float32 weights to show it.)
TEST(Trainer, GradientClippingBoundsEveryOptimizersStep) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto step_norm = [&](std::vector<std::string> overrides, double* lr) {
    largedet::engine::TrainOptions options;
    options.output_dir = dir.path() + "/run" + std::to_string(overrides.size());
    for (const char* o : {"SOLVER.OPTIMIZER=sgd", "SOLVER.MAX_ITER=1", "SOLVER.WEIGHT_DECAY=0",
                          "SOLVER.WEIGHT_DECAY_NORM=0", "SOLVER.MOMENTUM=0.9",
                          "SOLVER.WARMUP_FACTOR=1.0", "SOLVER.BASE_LR=0.5"})
      overrides.push_back(o);
    largedet::engine::Trainer trainer(tiny_config(recipe, overrides), options);
    std::vector<torch::Tensor> before;
    for (const auto& p : trainer.model().parameters()) before.push_back(p.detach().clone());
    trainer.train();
    double squares = 0;
    size_t i = 0;
    for (const auto& p : trainer.model().parameters())
      squares += (p.detach() - before[i++]).to(torch::kDouble).square().sum().item<double>();
    *lr = trainer.last_step().lr;
    return std::sqrt(squares);
  };
  double lr = 0;
  const double clipped =
      step_norm({"SOLVER.CLIP_GRADIENTS.ENABLED=true", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE=full_model",
                 "SOLVER.CLIP_GRADIENTS.CLIP_VALUE=0.1"},
                &lr);
  EXPECT_EQ(lr, 0.5);
  EXPECT_NEAR(clipped, lr * 0.1, lr * 0.1 * 1e-3);
  const double unclipped = step_norm({}, &lr);
  EXPECT_GT(unclipped, 3 * lr * 0.1);
}

// Counts the host synchronisations of the first step (hooks included; none of the default ones
// acts after it with these periods).
// The counts of the step at iteration `at`.
class StepSyncs : public largedet::engine::HookBase {
 public:
  explicit StepSyncs(int64_t at = 0) : at(at) {}
  void before_step(largedet::engine::Trainer& trainer) override {
    if (trainer.iteration() == at) profiler = std::make_unique<largedet::ops::HostSyncProfiler>();
  }
  void after_step(largedet::engine::Trainer& trainer) override {
    if (trainer.iteration() != at) return;
    counts = profiler->counts();
    profiler.reset();
  }
  int64_t at;
  std::unique_ptr<largedet::ops::HostSyncProfiler> profiler;
  largedet::ops::HostSyncCounts counts;
};

// The trainer's own part of a step reads the host once (the losses and the flags the ranks agreed
// on, together); clipping every gradient adds no read, whatever the number of tensors.
TEST(Trainer, StepReadsTheHostOnceAndClippingAddsNoRead) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto first_step = [&](const std::string& name, std::vector<std::string> overrides,
                        int64_t at = 0) {
    largedet::engine::TrainOptions options;
    options.output_dir = dir.path() + "/" + name;
    overrides.push_back("SOLVER.MAX_ITER=2");
    overrides.push_back("SOLVER.LOG_PERIOD=5");
    overrides.push_back("SOLVER.CHECKPOINT_PERIOD=5");
    largedet::engine::Trainer trainer(tiny_config(recipe, overrides), options);
    auto hook = std::make_shared<StepSyncs>(at);
    trainer.register_hooks({hook});
    trainer.train();
    return hook->counts;
  };
  const auto plain = first_step("plain", {});
  const auto clipped = first_step("clipped", {"SOLVER.CLIP_GRADIENTS.ENABLED=true",
                                              "SOLVER.CLIP_GRADIENTS.CLIP_TYPE=full_model"});
  EXPECT_EQ(plain.syncs_by_name.at("largedet::trainer: losses and agreed flags"), 1);
  EXPECT_EQ(plain.uploads_by_name.at("trainer: stop"), 1);  // its flag, to the agreement
  EXPECT_EQ(clipped.syncs, plain.syncs);
  std::ostringstream names;
  for (const auto& [name, n] : plain.syncs_by_name) names << name << " " << n << "; ";
  std::cout << "host syncs in the first step: " << plain.syncs << " (" << names.str() << ")\n";

  // What the host sends the device: constants once (the first step), then only what each batch
  // brings (its sizes and boxes per image), however many steps run.
  EXPECT_EQ(plain.uploads_by_name.count("pixel mean"), 1u);
  EXPECT_EQ(plain.uploads_by_name.count("cell anchors"), 1u);
  const auto second = first_step("second", {}, 1);
  std::ostringstream sent;
  for (const auto& [name, n] : second.syncs_by_name) sent << name << " " << n << "; ";
  std::cout << "host syncs in the second step: " << second.syncs << " (" << sent.str() << ")\n";
  sent.str("");
  for (const auto& [name, n] : second.uploads_by_name) sent << name << " " << n << "; ";
  EXPECT_EQ(second.uploads_by_name.count("pixel mean"), 0u) << sent.str();
  EXPECT_EQ(second.uploads_by_name.count("cell anchors"), 0u) << sent.str();
  EXPECT_GT(second.uploads, 0) << sent.str();
  std::cout << "uploads in the second step: " << second.uploads << " (" << sent.str() << ")\n";
}

// Precise BN replaces the running statistics at the last iteration (no evaluation here) and
// keeps the batch counters; its unit test (precise_bn_test.cpp) checks the values themselves.
TEST(Trainer, PreciseBnHookRecomputesStatisticsAtTheEnd) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto final_stats = [&](const std::string& name, std::vector<std::string> overrides) {
    largedet::engine::TrainOptions options;
    options.output_dir = dir.path() + "/" + name;
    overrides.push_back("SOLVER.MAX_ITER=2");
    largedet::engine::train(tiny_config(recipe, overrides), options);
    return largedet::safetensors::load(options.output_dir + "/model_final.safetensors").tensors;
  };
  const auto plain = final_stats("plain", {});
  const auto precise =
      final_stats("precise", {"TEST.PRECISE_BN.ENABLED=true", "TEST.PRECISE_BN.NUM_ITER=3"});
  int differing = 0, counters = 0;
  for (const auto& [name, tensor] : plain) {
    if (name.find("running_var") != std::string::npos && !tensor.equal(precise.at(name)))
      ++differing;
    if (name.find("num_batches_tracked") != std::string::npos) {
      EXPECT_TRUE(tensor.equal(precise.at(name))) << name;
      ++counters;
    }
    if (name.find("running") == std::string::npos && name.find("num_batches") == std::string::npos)
      EXPECT_TRUE(tensor.equal(precise.at(name))) << name << ": precise BN changed a weight";
  }
  EXPECT_GT(counters, 10);
  EXPECT_EQ(differing, counters);
}

TEST(Trainer, NonFiniteLossesAreSkippedThenStopTheRun) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  // SGD at lr 1e30: the first step is finite, then weights of ~1e27 make every loss non-finite.
  // (A zero MODEL.PIXEL_STD, the old way, is now refused by the config schema.)
  auto config = tiny_config(recipe, {"SOLVER.OPTIMIZER=sgd", "SOLVER.BASE_LR=1e30",
                                     "SOLVER.MAX_BAD_STEPS=3", "SOLVER.MAX_ITER=10"});
  try {
    largedet::engine::train(config, options);
    FAIL() << "training should stop";
  } catch (const largedet::Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("3 steps in a row had non-finite losses"), std::string::npos) << message;
    EXPECT_NE(message.find("loss_"), std::string::npos) << message;
    EXPECT_NE(message.find("iteration 4"), std::string::npos) << message;
  }
}

TEST(Trainer, UnreadableImageIsSkippedAndCounted) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  std::ofstream(dir.path() + "/data/train/000001.jpg", std::ios::trunc) << "not a jpeg";
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  auto result = largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=6"}), options);
  EXPECT_EQ(result.iteration, 6);
  EXPECT_EQ(result.bad_inputs, 1);
}

TEST(Trainer, ConfigurationErrorsSayWhatToChange) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path(), 8);
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  auto expect_error = [&](const std::vector<std::string>& overrides, const std::string& text) {
    try {
      largedet::engine::train(tiny_config(recipe, overrides), options);
      ADD_FAILURE() << "no error for " << overrides[0];
    } catch (const largedet::Error& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_error({"SOLVER.IMS_PER_DEVICE=3"}, "not a multiple of SOLVER.IMS_PER_DEVICE");
  expect_error({"MODEL.ROI_HEADS.NUM_CLASSES=80"}, "the training set has 4 classes");
  // Also when the test set is loaded at start-up: the training set is what to fix it against.
  expect_error({"MODEL.ROI_HEADS.NUM_CLASSES=80", "TEST.EVAL_PERIOD=2"},
               "the training set has 4 classes");
  expect_error({"MODEL.DEVICE=tpu"}, "unknown MODEL.DEVICE");
  expect_error({"SOLVER.AMP.DTYPE=fp8"}, "use fp16, bf16");
  expect_error({"SOLVER.AMP.ENABLED=true", "SOLVER.AMP.DTYPE=fp16"}, "SOLVER.AMP.DTYPE=bf16");
  // Through the CLI: a misspelt key names the closest one and the command fails.
  auto run = run_shell(quote(LARGEDET_CLI) + " train --config " + quote(recipe) +
                       " SOLVER.BASE_LRR=0.1 --output " + quote(dir.path() + "/cli"));
  EXPECT_EQ(run.code, 1);
  EXPECT_NE(run.output.find("SOLVER.BASE_LR"), std::string::npos) << run.output;
}

// `largedet train` of `recipe` (with `overrides`) into `run` for ever, its stderr into `log` when
// given, once it has logged its first iteration.
pid_t start_endless_training(const std::string& recipe, const std::string& run,
                             const std::string& log = "", std::vector<std::string> overrides = {}) {
  std::vector<std::string> args = {LARGEDET_CLI,
                                   "train",
                                   "--config",
                                   recipe,
                                   "--output",
                                   run,
                                   "SOLVER.MAX_ITER=100000",
                                   "SOLVER.LOG_PERIOD=1",
                                   "LOG_LEVEL=warning"};
  args.insert(args.end(), overrides.begin(), overrides.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!log.empty()) std::freopen(log.c_str(), "w", stderr);
    ::execv(LARGEDET_CLI, argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (pid > 0 && read_text(run + "/metrics.jsonl").empty() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return pid;
}

TEST(Trainer, SigintSavesACheckpointAndExits130EvenWhenRepeated) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run";
  const pid_t pid = start_endless_training(recipe, run);
  ASSERT_GT(pid, 0);
  // Two signals 0.1 s apart: the second is acknowledged and ignored, the checkpoint still comes.
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 130);  // stopped, not finished: the shell's code for SIGINT
  largedet::engine::Checkpointer checkpointer(run, 0);
  ASSERT_TRUE(checkpointer.last().has_value());
  auto checkpoint = largedet::engine::Checkpointer::load(*checkpointer.last());
  EXPECT_GE(checkpoint.iteration, 1);
  EXPECT_LT(checkpoint.iteration, 100000);
}

// A third signal forces the exit the first two deferred, as PyTorch's launcher does: the process
// ends by the signal itself (no checkpoint awaited), having said so at the first two.
TEST(Trainer, AThirdSigintForcesAnExitWithoutTheCheckpoint) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run", log = dir.path() + "/stderr.txt";
  // Images 5x larger than the recipe's: iterations long enough that the three signals land in
  // the one the first interrupts.
  const pid_t pid = start_endless_training(
      recipe, run, log, {"INPUT.MIN_SIZE_TRAIN=[480]", "INPUT.MAX_SIZE_TRAIN=480"});
  ASSERT_GT(pid, 0);
  // Each signal once the previous one is acknowledged: two sent at once could merge into one.
  const auto send_then_await = [&](const std::string& acknowledgement) {
    ::kill(pid, SIGINT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (read_text(log).find(acknowledgement) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  send_then_await("SIGINT: stopping after this iteration");
  send_then_await("one more signal forces an exit");
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGINT);
  const auto said = read_text(log);
  EXPECT_NE(said.find("SIGINT: stopping after this iteration"), std::string::npos) << said;
  EXPECT_NE(said.find("one more signal forces an exit"), std::string::npos) << said;
}

// Its output's reader gone after the first bytes (`| head`, a closed ssh session, a killed
// sweep), a run goes on to the end instead of dying of SIGPIPE at its next log line.
TEST(Trainer, ARunOutlivesTheReaderOfItsOutput) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run";
  const auto shell = run_shell("(" + quote(LARGEDET_CLI) + " train --config " + quote(recipe) +
                               " --output " + quote(run) + " SOLVER.LOG_PERIOD=1; echo $? > " +
                               quote(dir.path() + "/code") + ") 2>&1 | head -c 1");
  EXPECT_EQ(read_text(dir.path() + "/code"), "0\n");
  EXPECT_EQ(::access((run + "/model_final.safetensors").c_str(), F_OK), 0) << shell.output;
}

TEST(Trainer, TwoRanksThroughLaunch) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string run = dir.path() + "/run";
  auto launch = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 --master-port 0 -- " +
                          quote(LARGEDET_CLI) + " train --config " + quote(recipe) + " --output " +
                          quote(run) + " TEST.EVAL_PERIOD=4");
  ASSERT_EQ(launch.code, 0) << launch.output;
  EXPECT_NE(launch.output.find("rank 1/2"), std::string::npos) << launch.output;
  EXPECT_NE(launch.output.find("2 rank(s) x 1 micro-batch(es) x 2"), std::string::npos)
      << launch.output;
  auto lines = metrics_lines(run);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1]["images_per_second"].is_number(), true);
  EXPECT_TRUE(lines[2].contains("bbox/AP"));
  EXPECT_EQ(::access((run + "/model_0000004.safetensors").c_str(), F_OK), 0);
}

}  // namespace

namespace {

TEST(Trainer, ScaleScheduleShortensTheRun) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path(), 8);
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  // Global batch 4 against a reference of 2: half the iterations for the same epochs.
  auto result = largedet::engine::train(
      tiny_config(recipe, {"SOLVER.REFERENCE_BATCH=2", "SOLVER.SCALE_SCHEDULE=true"}), options);
  EXPECT_EQ(result.iteration, 2);
}

}  // namespace

namespace {

// Mask R-CNN (segm evaluation through RLE-encoded masks), RetinaNet, and OpenImages data with its
// mAP@0.5: each trains two iterations and evaluates through the trainer.
TEST(Trainer, MaskRCNNRetinaNetAndOpenImagesTrainAndEvaluate) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::vector<std::string> common = {"SOLVER.MAX_ITER=2", "TEST.EVAL_PERIOD=2"};
  auto run = [&](const std::string& name, std::vector<std::string> overrides) {
    overrides.insert(overrides.end(), common.begin(), common.end());
    largedet::engine::TrainOptions options;
    options.output_dir = dir.path() + "/" + name;
    return largedet::engine::train(tiny_config(recipe, overrides), options).evaluation;
  };
  auto mask = run("mask", {"MODEL.MASK_ON=true"});
  ASSERT_TRUE(mask.count("segm/AP")) << "no segm evaluation";
  EXPECT_GE(mask.at("segm/AP"), 0.0);
  EXPECT_TRUE(mask.count("bbox/AP"));
  auto retina = run("retinanet", {"MODEL.META_ARCHITECTURE=RetinaNet"});
  ASSERT_TRUE(retina.count("bbox/AP"));
  EXPECT_GE(retina.at("bbox/AP"), 0.0);
  auto oid = run("openimages", largedet::test::write_openimages_csvs(dir.path()));
  ASSERT_TRUE(oid.count("oid/mAP@0.5"));
  EXPECT_GE(oid.at("oid/mAP@0.5"), 0.0);
  EXPECT_LE(oid.at("oid/mAP@0.5"), 1.0);
}

// DATASETS.TEST_HIERARCHY expands the test ground truth before scoring (class 2 under class 1
// here, so every box of class 2 gains a copy of class 1) and TEST.OID_PROTOCOL picks the metric.
// Mixed precision runs in every CI: bf16 autocast on the CPU trains, and its loss falls as the
// float32 run's does (same seed, same data), while differing from it (autocast did run).
TEST(Trainer, Bf16AutocastOnTheCpuLearnsLikeFloat32) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto losses = [&](const std::string& name, std::vector<std::string> overrides) {
    overrides.insert(overrides.end(),
                     {"SOLVER.MAX_ITER=40", "SOLVER.LOG_PERIOD=4", "SOLVER.CHECKPOINT_PERIOD=40"});
    largedet::engine::TrainOptions options;
    options.output_dir = dir.path() + "/" + name;
    const auto result = largedet::engine::train(tiny_config(recipe, overrides), options);
    EXPECT_EQ(result.skipped_steps, 0) << name;
    std::vector<double> out;
    for (const auto& line : metrics_lines(options.output_dir))
      out.push_back(line["total_loss"].get<double>());
    return out;
  };
  const auto fp32 = losses("fp32", {});
  const auto bf16 = losses("bf16", {"SOLVER.AMP.ENABLED=true", "SOLVER.AMP.DTYPE=bf16"});
  ASSERT_EQ(bf16.size(), 10u);
  ASSERT_EQ(fp32.size(), bf16.size());
  EXPECT_NE(bf16.front(), fp32.front());
  auto mean = [](const std::vector<double>& v, size_t begin, size_t end) {
    double sum = 0;
    for (size_t i = begin; i < end; ++i) sum += v[i];
    return sum / double(end - begin);
  };
  for (const auto* run : {&fp32, &bf16}) EXPECT_LT(mean(*run, 7, 10), 0.8 * mean(*run, 0, 3));
  EXPECT_NEAR(mean(bf16, 7, 10), mean(fp32, 7, 10), 0.15 * mean(fp32, 7, 10));
}

TEST(Trainer, OpenImagesTestSetFollowsTheHierarchyAndProtocolKeys) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto overrides = largedet::test::write_openimages_csvs(dir.path());
  const auto plain = largedet::engine::load_test_set(tiny_config(recipe, overrides), true);
  EXPECT_EQ(plain.oid_protocol, largedet::evaluation::OidProtocol::kChallenge);
  size_t class_2 = 0;
  for (const auto& b : plain.oid.boxes) class_2 += b.label == "/m/2";
  ASSERT_GT(class_2, 0u);
  {
    std::ofstream h(dir.path() + "/oi/hierarchy.json");
    h << R"({"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/1", "Subcategory": [)"
      << R"({"LabelName": "/m/2"}]}, {"LabelName": "/m/3"}, {"LabelName": "/m/4"}]})";
  }
  overrides.push_back("DATASETS.TEST_HIERARCHY=" + dir.path() + "/oi/hierarchy.json");
  overrides.push_back("TEST.OID_PROTOCOL=v2");
  const auto expanded = largedet::engine::load_test_set(tiny_config(recipe, overrides), true);
  EXPECT_EQ(expanded.oid.boxes.size(), plain.oid.boxes.size() + class_2);
  EXPECT_EQ(expanded.oid_protocol, largedet::evaluation::OidProtocol::kV2);
  EXPECT_THROW(tiny_config(recipe, {"TEST.OID_PROTOCOL=v4"}), largedet::Error);
}

TEST(Trainer, EvaluationWithoutATestSetFailsBeforeTraining) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path(), 8);
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  try {
    largedet::engine::train(
        tiny_config(recipe, {"TEST.EVAL_PERIOD=2", "DATASETS.TEST_ANNOTATIONS=\"\""}), options);
    FAIL() << "no error";
  } catch (const largedet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("TEST.EVAL_PERIOD"), std::string::npos) << e.what();
  }
  EXPECT_NE(::access((dir.path() + "/run/model_0000002.safetensors").c_str(), F_OK), 0);
}

}  // namespace

namespace {

// Two ranks with SyncBN: 3 + 2 iterations equal 5 (rank 0 picks the checkpoint, each rank loads
// it), and evaluating the weights on two ranks scores exactly what one process scores.
TEST(Trainer, TwoRanksResumeBitIdenticalAndEvaluateAcrossRanks) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto launch_train = [&](const std::string& out, const std::string& extra) {
    auto run = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 --master-port 0 -- " +
                         quote(LARGEDET_CLI) + " train --config " + quote(recipe) + " --output " +
                         quote(dir.path() + "/" + out) + " " + extra);
    EXPECT_EQ(run.code, 0) << run.output;
    return run.output;
  };
  launch_train("straight", "SOLVER.MAX_ITER=5");
  launch_train("resumed", "SOLVER.MAX_ITER=3");
  const auto resumed = launch_train("resumed", "SOLVER.MAX_ITER=5 --resume");
  EXPECT_NE(resumed.find("resumed from"), std::string::npos) << resumed;
  expect_same_tensors(dir.path() + "/straight/model_final.safetensors",
                      dir.path() + "/resumed/model_final.safetensors");

  const std::string weights = quote(dir.path() + "/straight/model_final.safetensors");
  auto one = run_shell(quote(LARGEDET_CLI) + " evaluate --config " + quote(recipe) + " --weights " +
                       weights + " --output " + quote(dir.path() + "/one.json"));
  ASSERT_EQ(one.code, 0) << one.output;
  auto two = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 --master-port 0 -- " +
                       quote(LARGEDET_CLI) + " evaluate --config " + quote(recipe) + " --weights " +
                       weights + " --output " + quote(dir.path() + "/two.json"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("over 2 rank(s)"), std::string::npos) << two.output;
  auto a = nlohmann::json::parse(read_text(dir.path() + "/one.json"));
  auto b = nlohmann::json::parse(read_text(dir.path() + "/two.json"));
  EXPECT_EQ(a, b);

  // Only rank 0 reads the ground truth: a file missing there stops both ranks, not just one.
  std::string oid;
  for (const auto& o : largedet::test::write_openimages_csvs(dir.path())) oid += " " + quote(o);
  auto missing = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 --master-port 0 -- " +
                           quote(LARGEDET_CLI) + " evaluate --config " + quote(recipe) +
                           " --weights " + weights + oid +
                           " DATASETS.TEST_IMAGE_LABELS=" + quote(dir.path() + "/no_labels.csv"));
  EXPECT_NE(missing.code, 0) << missing.output;
  EXPECT_NE(missing.output.find("no_labels.csv"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find("loading the test set failed on another rank"), std::string::npos)
      << missing.output;
}

}  // namespace
