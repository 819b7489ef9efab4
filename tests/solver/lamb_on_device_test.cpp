// LAMB and PMD-LAMB on each device (tests/common/on_device.h): the fused kernel (on CUDA the
// multi-tensor kernel, src/solver/cuda/lamb_multi_tensor.cu; on the CPU the fused CPU kernel) and
// the ATen composition (fused = false) against the double-precision reference, over 30 tensors of
// mixed sizes. The Cpu/ twins run in every ctest run, the Cuda/ ones skip without a GPU.
#include <gtest/gtest.h>

#include <ATen/record_function.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <vector>

#ifdef LARGEDET_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "common/on_device.h"
#include "largedet/solver/lamb.h"
#include "solver/lamb_reference.h"

namespace largedet::solver {
namespace {

using lamb_test::Reference;
using lamb_test::to_vector;

using LambOnDevice = test::OnDevice;

// Sizes of 1, odd ones, ones around the kernel's 256 threads and 4096-element chunks, several
// chunks, more chunks (257) than the norm reduction has threads, and an empty tensor.
const std::vector<std::vector<int64_t>> kShapes = {
    {1},       {2},           {3},          {7},     {31},    {64},     {255},  {256},
    {257},     {1000},        {4095},       {4096},  {4097},  {8191},   {3, 3}, {37, 29},
    {4, 3, 3}, {16, 8, 3, 3}, {10007},      {12289}, {20000}, {70001},  {0},    {50},
    {128},     {5, 1},        {1, 1, 1, 1}, {513},   {2049},  {1050000}};
constexpr size_t kZeroGrad = 2;     // its gradient stays zero: u = weight decay only
constexpr size_t kZeroWeight = 23;  // starts at zero: r = 1 on its first step
constexpr size_t kNoGrad = 24;      // never has a gradient: no step touches it

// Tolerance: the largest difference in a tensor relative to its largest reference magnitude, as
// tests/solver/lamb_reference_test.cpp allows the CPU kernel. The kernels differ from each other
// only in float rounding (fused multiply-adds, the norms' summation order).
constexpr double kTolerance = 1e-5;

struct Problem {
  std::vector<torch::Tensor> initial;
  std::vector<std::vector<torch::Tensor>> grads;  // [step][tensor], undefined for kNoGrad
};

Problem make_problem(int steps, uint64_t seed) {
  torch::manual_seed(seed);
  Problem p;
  for (size_t k = 0; k < kShapes.size(); ++k)
    p.initial.push_back(k == kZeroWeight ? torch::zeros(kShapes[k]) : torch::randn(kShapes[k]));
  for (int s = 0; s < steps; ++s) {
    std::vector<torch::Tensor> g;
    for (size_t k = 0; k < kShapes.size(); ++k) {
      if (k == kNoGrad)
        g.emplace_back();
      else
        g.push_back(k == kZeroGrad ? torch::zeros(kShapes[k]) : torch::randn(kShapes[k]) * 0.1);
    }
    p.grads.push_back(g);
  }
  return p;
}

// The weights' second group (like biases): no weight decay, a trust-ratio clip.
LambOptions second_group(const LambOptions& o) {
  return LambOptions(o).weight_decay(0).trust_clip(0.5);
}

// Two parameter groups, even and odd tensors, so that one step updates tensors of both.
std::vector<torch::Tensor> run(const LambOptions& options, const Problem& problem,
                               torch::Device device) {
  std::vector<torch::Tensor> params;
  for (const auto& t : problem.initial)
    params.push_back(t.clone().to(device).set_requires_grad(true));
  std::vector<torch::Tensor> even, odd;
  for (size_t k = 0; k < params.size(); ++k) (k % 2 ? odd : even).push_back(params[k]);
  Lamb lamb({torch::optim::OptimizerParamGroup(even, std::make_unique<LambOptions>(options)),
             torch::optim::OptimizerParamGroup(
                 odd, std::make_unique<LambOptions>(second_group(options)))},
            options);
  for (const auto& step_grads : problem.grads) {
    for (size_t k = 0; k < params.size(); ++k)
      if (step_grads[k].defined()) params[k].mutable_grad() = step_grads[k].to(device);
    lamb.step();
  }
  for (auto& p : params) p = p.detach().cpu();
  return params;
}

// The reference on the tensors that have gradients, each group with its own options.
std::vector<std::vector<double>> reference(const LambOptions& options, const Problem& problem) {
  std::vector<std::vector<double>> w(kShapes.size());
  Reference groups[2] = {{options, {}, {}, {}, {}, 0}, {second_group(options), {}, {}, {}, {}, 0}};
  std::vector<size_t> members[2];
  for (size_t k = 0; k < kShapes.size(); ++k) {
    w[k] = to_vector(problem.initial[k]);
    if (k != kNoGrad) members[k % 2].push_back(k);
  }
  for (const auto& step_grads : problem.grads) {
    for (int group = 0; group < 2; ++group) {
      std::vector<std::vector<double>> gw, gg;
      for (size_t k : members[group]) {
        gw.push_back(w[k]);
        gg.push_back(to_vector(step_grads[k]));
      }
      groups[group].step(gw, gg);
      for (size_t i = 0; i < members[group].size(); ++i) w[members[group][i]] = gw[i];
    }
  }
  return w;
}

void expect_close(const std::vector<torch::Tensor>& got,
                  const std::vector<std::vector<double>>& want, const char* what) {
  for (size_t k = 0; k < got.size(); ++k) {
    const auto g = to_vector(got[k]);
    double scale = 1e-30, diff = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      scale = std::max(scale, std::abs(want[k][i]));
      diff = std::max(diff, std::abs(g[i] - want[k][i]));
    }
    EXPECT_LE(diff / scale, kTolerance)
        << what << ", tensor " << k << " of shape " << got[k].sizes();
  }
}

std::vector<std::vector<double>> as_vectors(const std::vector<torch::Tensor>& ts) {
  std::vector<std::vector<double>> out;
  for (const auto& t : ts) out.push_back(to_vector(t));
  return out;
}

TEST_P(LambOnDevice, FusedKernelAndAtenMatchTheReference) {
  const auto dev = device();
  int combination = 0;
  // LAMB, PMD-LAMB (linear) and PMD-LAMB (cosine, first moment only), each bias correction.
  for (int variant = 0; variant < 3; ++variant)
    for (BiasCorrection bias :
         {BiasCorrection::kNormalized, BiasCorrection::kGlobal, BiasCorrection::kNone}) {
      auto options = LambOptions(0.01).weight_decay(0.01).bias_correction(bias);
      if (variant == 1) options.decay_period(5);
      if (variant == 2)
        options.decay_period(5).decay_shape(DecayShape::kCosine).decay_second_moment(false);
      SCOPED_TRACE(::testing::Message() << "variant " << variant << " bias " << int(bias));
      // 12 steps: two full periods of T = 5 and the start of a third.
      const Problem problem = make_problem(12, 100 + combination++);
      const auto want = reference(options, problem);
      const auto fused = run(options, problem, dev);
      const auto aten = run(LambOptions(options).fused(false), problem, dev);
      expect_close(fused, want, "fused kernel vs reference");
      expect_close(aten, want, "ATen composition vs reference");
      if (on_cuda())
        expect_close(fused, as_vectors(run(options, problem, torch::kCPU)),
                     "multi-tensor kernel vs CPU kernel");
      EXPECT_TRUE(torch::equal(fused[kNoGrad], problem.initial[kNoGrad]));
    }
}

TEST_P(LambOnDevice, WithoutTrustRatioMatchesTheReference) {
  const auto options = LambOptions(0.001).decay_period(4).weight_decay(0.01).trust_ratio(false);
  const Problem problem = make_problem(6, 7);
  expect_close(run(options, problem, device()), reference(options, problem), "r = 1");
}

// The norms are added in a fixed order (no atomics): two runs agree bit for bit.
TEST_P(LambOnDevice, FusedStepsAreDeterministic) {
  const auto options = LambOptions(0.01).decay_period(3).weight_decay(0.01);
  const Problem problem = make_problem(5, 3);
  const auto a = run(options, problem, device());
  const auto b = run(options, problem, device());
  for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(torch::equal(a[k], b[k])) << "tensor " << k;
}

std::atomic<int64_t> dispatched_ops{0};

// While it lives: counts the ATen ops this thread dispatches, and makes CUDA fail any host
// synchronisation (an item(), a copy to pageable memory, a stream synchronisation).
class StepWatch {
 public:
  StepWatch() {
    dispatched_ops = 0;
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(
        [](const at::RecordFunction&) -> std::unique_ptr<at::ObserverContext> {
          ++dispatched_ops;
          return nullptr;
        }));
#ifdef LARGEDET_WITH_CUDA
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
#endif
  }
  ~StepWatch() {
#ifdef LARGEDET_WITH_CUDA
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
#endif
    at::removeCallback(handle_);
  }
  StepWatch(const StepWatch&) = delete;
  StepWatch& operator=(const StepWatch&) = delete;

 private:
  at::CallbackHandle handle_;
};

// ATen ops dispatched by a step after the first (which allocates the moments).
int64_t ops_per_step(torch::Device device, int tensors, bool fused) {
  std::vector<torch::Tensor> params;
  for (int k = 0; k < tensors; ++k)
    params.push_back(torch::randn({100 + 37 * k}, device).set_requires_grad(true));
  Lamb lamb(params, LambOptions(0.01).decay_period(5).fused(fused));
  for (auto& p : params) p.mutable_grad() = torch::randn_like(p);
  lamb.step();
  StepWatch watch;
  lamb.step();
  return dispatched_ops.load();
}

// The fused step's ATen ops do not grow with the tensors (CUDA: one multi-tensor launch per
// device, and no host synchronisation; CPU: the kernel works on raw pointers).
TEST_P(LambOnDevice, FusedStepDispatchesAsMuchForThirtyTensorsAsForThree) {
  const auto dev = device();
  const int64_t three = ops_per_step(dev, 3, true), thirty = ops_per_step(dev, 30, true);
  EXPECT_EQ(three, thirty);
  // The counter sees per-tensor work: the ATen composition's ops grow with the tensors.
  EXPECT_GT(ops_per_step(dev, 30, false), thirty + 27);
}

LARGEDET_ON_DEVICES(LambOnDevice);

}  // namespace
}  // namespace largedet::solver
