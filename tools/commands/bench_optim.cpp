// largedet bench optim: one optimizer step over a parameter set shaped like torchvision's Faster
// R-CNN R50-FPN (41,808,406 parameters in 189 tensors), for torch SGD and AdamW, LAMB as a naive
// composition of ATen ops, and our fused LAMB and PMD-LAMB, against the bytes each must move.
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "bench_timing.h"
#include "command_registry.h"
#include "largedet/solver/lamb.h"
#include "largedet/tensor/parallel.h"
#include "largedet/tensor/threads.h"

namespace {

using largedet::tools::BenchClock;
using largedet::tools::median_ms;
using largedet::tools::seconds_since;

// (shape, how many tensors) of fasterrcnn_resnet50_fpn's parameters, from torchvision 0.26.
const std::vector<std::pair<std::vector<int64_t>, int>> kFasterRcnnR50Fpn = {
    {{64, 3, 7, 7}, 1},
    {{64}, 14},
    {{64, 64, 1, 1}, 1},
    {{64, 64, 3, 3}, 3},
    {{256, 64, 1, 1}, 4},
    {{256}, 41},
    {{64, 256, 1, 1}, 2},
    {{128, 256, 1, 1}, 1},
    {{128}, 16},
    {{128, 128, 3, 3}, 4},
    {{512, 128, 1, 1}, 4},
    {{512}, 22},
    {{512, 256, 1, 1}, 1},
    {{128, 512, 1, 1}, 3},
    {{256, 512, 1, 1}, 2},
    {{256, 256, 3, 3}, 11},
    {{1024, 256, 1, 1}, 6},
    {{1024}, 16},
    {{1024, 512, 1, 1}, 1},
    {{256, 1024, 1, 1}, 6},
    {{512, 1024, 1, 1}, 1},
    {{512, 512, 3, 3}, 3},
    {{2048, 512, 1, 1}, 3},
    {{2048}, 8},
    {{2048, 1024, 1, 1}, 1},
    {{512, 2048, 1, 1}, 2},
    {{256, 256, 1, 1}, 1},
    {{256, 2048, 1, 1}, 1},
    {{3, 256, 1, 1}, 1},
    {{3}, 1},
    {{12, 256, 1, 1}, 1},
    {{12}, 1},
    {{1024, 12544}, 1},
    {{1024, 1024}, 1},
    {{91, 1024}, 1},
    {{91}, 1},
    {{364, 1024}, 1},
    {{364}, 1}};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Read + write bandwidth of a large memcpy on the intra-op threads, in bytes per second.
double copy_bandwidth(int repeats) {
  const size_t bytes = 256u << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    auto start = BenchClock::now();
    at::parallel_for(0, bytes, 1 << 20, [&](int64_t begin, int64_t end) {
      std::memcpy(b.data() + begin, a.data() + begin, end - begin);
    });
    times.push_back(seconds_since(start));
    a[r % bytes] = b[(r * 7) % bytes];  // keeps the copies observable
  }
  return 2.0 * bytes / median(times);
}

struct BenchArgs {
  int repeats = 10;
  int threads = 0;
};

void run(const BenchArgs& args) {
  const int threads = largedet::configure_threads(args.threads);
  std::vector<torch::Tensor> params;
  int64_t count = 0;
  torch::manual_seed(0);
  for (const auto& [shape, n] : kFasterRcnnR50Fpn) {
    for (int i = 0; i < n; ++i) {
      auto p = torch::randn(shape).mul_(0.05).requires_grad_(true);
      p.mutable_grad() = torch::randn(shape).mul_(0.01);
      count += p.numel();
      params.push_back(p);
    }
  }
  const double bandwidth = copy_bandwidth(args.repeats);
  const double floor_s = 28.0 * count / bandwidth;  // read w, g, m, v; write w, m, v
  std::printf("parameters: %lld in %zu tensors (Faster R-CNN R50-FPN), threads: %d\n",
              static_cast<long long>(count), params.size(), threads);
  std::printf("memcpy bandwidth (read + write): %.2f GB/s; LAMB bytes-moved floor: %.1f ms\n",
              bandwidth / 1e9, floor_s * 1e3);
  using Factory = std::function<std::unique_ptr<torch::optim::Optimizer>()>;
  using largedet::solver::Lamb;
  using largedet::solver::LambOptions;
  const std::vector<std::pair<std::string, Factory>> optimizers = {
      {"torch SGD (momentum)",
       [&] {
         return std::make_unique<torch::optim::SGD>(
             params, torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
       }},
      {"torch AdamW",
       [&] {
         return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(1e-3));
       }},
      {"LAMB, naive ATen ops",
       [&] {
         return std::make_unique<Lamb>(params, LambOptions(1e-3).weight_decay(1e-4).fused(false));
       }},
      {"LAMB, fused (ours)",
       [&] { return std::make_unique<Lamb>(params, LambOptions(1e-3).weight_decay(1e-4)); }},
      {"PMD-LAMB T=200, fused (ours)", [&] {
         return std::make_unique<Lamb>(params,
                                       LambOptions(1e-3).weight_decay(1e-4).decay_period(200));
       }}};
  std::printf("%-30s %12s %14s\n", "optimizer", "median ms", "x LAMB floor");
  double naive = 0, pmd = 0;
  for (const auto& [name, make] : optimizers) {
    auto optimizer = make();
    // The warm-up step allocates the optimizer state.
    double t = median_ms(args.repeats, false, [&] { optimizer->step(); }) / 1e3;
    if (name.rfind("LAMB, naive", 0) == 0) naive = t;
    if (name.rfind("PMD-LAMB", 0) == 0) pmd = t;
    std::printf("%-30s %12.1f %14.2f\n", name.c_str(), t * 1e3, t / floor_s);
    std::fflush(stdout);
  }
  std::printf("PMD-LAMB fused vs naive ATen LAMB: %.2fx faster; %.2fx the bytes-moved floor\n",
              naive / pmd, pmd / floor_s);
}

void setup(CLI::App& cmd) {
  auto args = std::make_shared<BenchArgs>();
  cmd.add_option("--repeats", args->repeats, "timed steps per optimizer (median reported)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd.add_option("--threads", args->threads, "intra-op threads (0 = every usable core)")
      ->capture_default_str();
  cmd.callback([args] { run(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND(
    "bench optim",
    "Time one optimizer step over Faster R-CNN R50-FPN-shaped parameters: "
    "SGD, AdamW, naive LAMB, fused LAMB and PMD-LAMB vs the bytes-moved floor",
    setup);
