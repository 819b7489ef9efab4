// Optimizer and schedule state: 10 steps straight equal 5 steps, save, load into fresh objects,
// 5 more steps, bit for bit.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <sstream>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/solver/build.h"
#include "largedet/solver/lamb.h"
#include "largedet/solver/lars.h"

namespace largedet::solver {
namespace {

struct Net : torch::nn::Module {
  Net() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)));
    norm = register_module("norm", torch::nn::BatchNorm2d(8));
    fc = register_module("fc", torch::nn::Linear(8, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(norm(conv(x)));
    return fc(x.mean({2, 3}));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
  torch::nn::Linear fc{nullptr};
};

Config solver_config(const std::string& optimizer) {
  Config config = Config::defaults();
  config.apply_overrides({"SOLVER.OPTIMIZER=" + optimizer, "SOLVER.BASE_LR=0.01",
                          "SOLVER.WARMUP_ITERS=4", "SOLVER.STEPS=[7]", "SOLVER.MAX_ITER=10",
                          "SOLVER.LAMB.DECAY_PERIOD=3", "SOLVER.IMS_PER_BATCH=32"});
  return config;
}

// Trains `steps` steps from iteration `start`, feeding deterministic batches.
void train(Net& net, torch::optim::Optimizer& optimizer, LRScheduler& scheduler, int start,
           int steps) {
  for (int it = start; it < start + steps; ++it) {
    torch::manual_seed(1000 + it);
    auto x = torch::randn({4, 3, 6, 6});
    auto y = torch::randn({4, 4});
    scheduler.set_iteration(it);
    optimizer.zero_grad();
    torch::mse_loss(net.forward(x), y).backward();
    optimizer.step();
  }
}

class ResumeExactness : public testing::TestWithParam<std::string> {};

TEST_P(ResumeExactness, SaveAndLoadMidwayIsBitExact) {
  Config config = solver_config(GetParam());
  torch::manual_seed(0);
  Net straight;
  torch::manual_seed(0);
  Net resumed;
  auto opt_a = build_optimizer(config, straight);
  auto sched_a = build_lr_scheduler(config, *opt_a);
  train(straight, *opt_a, sched_a, 0, 10);

  auto opt_b = build_optimizer(config, resumed);
  auto sched_b = build_lr_scheduler(config, *opt_b);
  train(resumed, *opt_b, sched_b, 0, 5);
  std::stringstream optimizer_bytes, schedule_bytes;
  {
    torch::serialize::OutputArchive archive;
    opt_b->save(archive);
    archive.save_to(optimizer_bytes);
    torch::serialize::OutputArchive schedule_archive;
    sched_b.save(schedule_archive);
    schedule_archive.save_to(schedule_bytes);
  }
  auto opt_c = build_optimizer(config, resumed);  // fresh objects
  auto sched_c = build_lr_scheduler(config, *opt_c);
  {
    torch::serialize::InputArchive archive;
    archive.load_from(optimizer_bytes);
    opt_c->load(archive);
    torch::serialize::InputArchive schedule_archive;
    schedule_archive.load_from(schedule_bytes);
    sched_c.load(schedule_archive);
  }
  EXPECT_EQ(sched_c.iteration(), 4);
  train(resumed, *opt_c, sched_c, 5, 5);

  auto a = straight.parameters(), b = resumed.parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  // And the run actually trained.
  torch::manual_seed(0);
  Net initial;
  EXPECT_FALSE(torch::equal(initial.parameters()[0], a[0]));
}

INSTANTIATE_TEST_SUITE_P(AllOptimizers, ResumeExactness,
                         testing::Values("sgd", "adamw", "lars", "lamb", "pmd_lamb"));

TEST(BuildOptimizer, PicksTheNamedOptimizerAndGroupOptions) {
  Net net;
  auto lamb = build_optimizer(solver_config("pmd_lamb"), net);
  auto* as_lamb = dynamic_cast<Lamb*>(lamb.get());
  ASSERT_NE(as_lamb, nullptr);
  const auto& options = static_cast<const LambOptions&>(as_lamb->param_groups()[0].options());
  EXPECT_EQ(options.decay_period(), 3);
  auto plain = build_optimizer(solver_config("lamb"), net);
  EXPECT_EQ(static_cast<const LambOptions&>(plain->param_groups()[0].options()).decay_period(), 0);
  EXPECT_NE(dynamic_cast<Lars*>(build_optimizer(solver_config("lars"), net).get()), nullptr);
  EXPECT_NE(dynamic_cast<torch::optim::SGD*>(build_optimizer(solver_config("sgd"), net).get()),
            nullptr);
  EXPECT_NE(dynamic_cast<torch::optim::AdamW*>(build_optimizer(solver_config("adamw"), net).get()),
            nullptr);
}

// Every name the schema allows has a builder.
TEST(BuildOptimizer, EveryAllowedNameBuilds) {
  Net net;
  for (const auto& name : find_key_spec("SOLVER.OPTIMIZER")->choices)
    EXPECT_NE(build_optimizer(solver_config(name), net), nullptr) << name;
}

TEST(BuildOptimizer, UnknownNameSaysWhatToUse) {
  Net net;
  try {
    build_optimizer(solver_config("pmd_lamn"), net);
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("'SOLVER.OPTIMIZER' is 'pmd_lamn'"), std::string::npos) << what;
    EXPECT_NE(what.find("command line"), std::string::npos) << what;
    EXPECT_NE(what.find("did you mean 'pmd_lamb'"), std::string::npos) << what;
  }
}

TEST(ParamGroups, NormAndBiasParametersHaveNoWeightDecayByDefault) {
  Net net;
  ParamGroupOptions options;
  options.weight_decay = 0.05;
  options.bias_lr_factor = 2;
  options.lr_factors = {{"fc.", 0.5}};
  auto groups = make_param_groups(net, options);
  int counted = 0;
  for (const auto& g : groups) {
    for (const auto& name : g.names) {
      ++counted;
      if (name == "conv.weight") EXPECT_EQ(g.weight_decay, 0.05);
      if (name == "conv.bias") {
        EXPECT_EQ(g.kind, ParamKind::kBias);
        EXPECT_EQ(g.weight_decay, 0);
        EXPECT_EQ(g.lr_factor, 2);
      }
      if (name == "norm.weight" || name == "norm.bias") {
        EXPECT_EQ(g.kind, ParamKind::kNorm);
        EXPECT_EQ(g.weight_decay, 0);
      }
      if (name == "fc.weight") EXPECT_EQ(g.lr_factor, 0.5);
      if (name == "fc.bias") EXPECT_EQ(g.lr_factor, 1.0);  // 2 (bias) * 0.5 (prefix)
    }
  }
  EXPECT_EQ(counted, 6);
  net.conv->weight.set_requires_grad(false);
  int trainable = 0;
  for (const auto& g : make_param_groups(net, options)) trainable += g.params.size();
  EXPECT_EQ(trainable, 5);
}

TEST(Lars, MatchesHandComputedSteps) {
  auto w = torch::tensor({3.0f, 4.0f}).set_requires_grad(true);  // ||w|| = 5
  Lars lars({w}, LarsOptions(1.0).momentum(0.9).weight_decay(0.1).trust_coefficient(0.001).eps(0));
  w.mutable_grad() = torch::tensor({0.6f, 0.8f});  // ||g|| = 1
  lars.step();
  // local = 0.001 * 5 / (1 + 0.1 * 5) = 1/300; buf = (g + 0.1 w) / 300 = [0.9, 1.2] / 300
  EXPECT_NEAR(w[0].item<double>(), 3 - 0.9 / 300, 1e-6);
  EXPECT_NEAR(w[1].item<double>(), 4 - 1.2 / 300, 1e-6);
  double w0 = 3 - 0.9 / 300, w1 = 4 - 1.2 / 300;
  w.mutable_grad() = torch::tensor({0.0f, 1.0f});
  lars.step();
  double wn = std::sqrt(w0 * w0 + w1 * w1);
  double local = 0.001 * wn / (1 + 0.1 * wn);
  double b0 = 0.9 * (0.9 / 300) + local * (0 + 0.1 * w0);
  double b1 = 0.9 * (1.2 / 300) + local * (1 + 0.1 * w1);
  EXPECT_NEAR(w[0].item<double>(), w0 - b0, 1e-6);
  EXPECT_NEAR(w[1].item<double>(), w1 - b1, 1e-6);
}

TEST(Lars, ZeroWeightOrGradientUsesPlainLearningRate) {
  auto w = torch::zeros({2}).set_requires_grad(true);
  Lars lars({w}, LarsOptions(0.5).momentum(0));
  w.mutable_grad() = torch::tensor({1.0f, -2.0f});
  lars.step();
  EXPECT_TRUE(torch::allclose(w, torch::tensor({-0.5f, 1.0f})));
}

TEST(Lars, NonAdaptiveGroupIsMomentumSgd) {
  auto w = torch::tensor({3.0f, 4.0f}).set_requires_grad(true);
  Lars lars({w}, LarsOptions(0.1).momentum(0.9).adapt(false));
  w.mutable_grad() = torch::tensor({1.0f, 1.0f});
  lars.step();
  lars.step();
  // buf1 = 0.1 g, buf2 = 0.9 buf1 + 0.1 g = 0.19 g; total 0.29
  EXPECT_TRUE(torch::allclose(w, torch::tensor({2.71f, 3.71f})));
}

}  // namespace
}  // namespace largedet::solver
