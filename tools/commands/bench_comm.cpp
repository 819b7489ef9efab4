// largedet bench comm: allreduce time, algorithm bandwidth and bus bandwidth from 1 KB to 256 MB
// for the current world, reported as nccl-tests does (busbw = algbw * 2(n-1)/n: the fraction of
// the link a ring allreduce keeps busy, comparable across world sizes). Run it under the launcher:
//   largedet launch --nproc-per-node 2 -- largedet bench comm
#include <torch/cuda.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "command_registry.h"
#include "largedet/core/error.h"
#include "largedet/distributed/process_group.h"

namespace {

struct CommArgs {
  int64_t min_bytes = 1024;
  int64_t max_bytes = 256LL << 20;
  int64_t step_factor = 2;
  int iters = 0;  // 0: about 64 MB of traffic per size, 3 to 200 iterations
  int warmup = 2;
  std::string backend = "auto";
  double timeout_s = 300;
};

std::string human(int64_t bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int u = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && u < 3) {
    value /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%g %s", value, units[u]);
  return text;
}

void run(const CommArgs& args) {
  using namespace largedet::distributed;
  ContextOptions options;
  options.backend = args.backend;
  // The communication of a GPU job when there are GPUs (NCCL under auto), else Gloo on the CPU.
  options.cuda_model = args.backend != "gloo" && torch::cuda::is_available();
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout_s * 1000));
  auto group = init(options);
  const int n = group->size();
  const bool main = group->rank() == 0;
  if (main) {
    std::printf("# largedet bench comm: allreduce (sum, float32), %d ranks, backend %s\n", n,
                group->context().backend.c_str());
    if (n == 1) std::printf("# world size 1: no communication; run under `largedet launch`\n");
    std::printf("%12s %12s %8s %10s %12s %12s %8s\n", "size(B)", "count", "iters", "time(us)",
                "algbw(GB/s)", "busbw(GB/s)", "#wrong");
  }
  auto opts = at::TensorOptions().dtype(at::kFloat).device(group->device());
  for (int64_t bytes = args.min_bytes; bytes <= args.max_bytes; bytes *= args.step_factor) {
    const int64_t count = std::max<int64_t>(1, bytes / 4);
    at::Tensor data = at::full({count}, static_cast<float>(group->rank() + 1), opts);
    // Correctness once: the sum of 1..n everywhere.
    group->allreduce(data);
    const double expected = n * (n + 1) / 2.0;
    int64_t wrong = (data != expected).sum().item<int64_t>();
    int iters = args.iters > 0
                    ? args.iters
                    : static_cast<int>(std::clamp<int64_t>((64LL << 20) / bytes, 3, 200));
    for (int i = 0; i < args.warmup; ++i) group->allreduce(data);
    group->barrier();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) group->allreduce(data);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
    // The slowest rank's time, as nccl-tests reports.
    at::Tensor t =
        at::full({2}, 0.0, at::TensorOptions().dtype(at::kDouble).device(group->device()));
    t[0] = seconds;
    t[1] = static_cast<double>(wrong);
    group->allreduce(t, ReduceOp::kMax);
    seconds = t[0].item<double>();
    wrong = static_cast<int64_t>(t[1].item<double>());
    double algbw = static_cast<double>(count * 4) / seconds / 1e9;
    double busbw = algbw * 2.0 * (n - 1) / n;
    if (main)
      std::printf("%12lld %12lld %8d %10.1f %12.3f %12.3f %8lld\n",
                  static_cast<long long>(count * 4), static_cast<long long>(count), iters,
                  seconds * 1e6, algbw, busbw, static_cast<long long>(wrong));
    std::fflush(stdout);
    if (wrong != 0) throw largedet::Error("allreduce of " + human(count * 4) + " gave wrong sums");
  }
}

void setup_bench_comm(CLI::App& cmd) {
  auto args = std::make_shared<CommArgs>();
  cmd.add_option("--min-bytes", args->min_bytes, "smallest message")->capture_default_str();
  cmd.add_option("--max-bytes", args->max_bytes, "largest message")->capture_default_str();
  cmd.add_option("--step-factor", args->step_factor, "size multiplier between rows")
      ->capture_default_str()
      ->check(CLI::Range(2, 1024));
  cmd.add_option("--iters", args->iters, "timed iterations per size (0: automatic)")
      ->capture_default_str();
  cmd.add_option("--warmup", args->warmup, "untimed iterations per size")->capture_default_str();
  cmd.add_option("--backend", args->backend,
                 "auto (nccl on the GPUs when there are any, else gloo), gloo or nccl")
      ->capture_default_str();
  cmd.add_option("--timeout", args->timeout_s, "seconds any collective may wait for a peer")
      ->capture_default_str();
  cmd.callback([args] { run(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("bench comm",
                          "Allreduce latency and bus bandwidth, 1 KB to 256 MB, over the current "
                          "world (run under largedet launch)",
                          setup_bench_comm);
