// largedet bench ops: our RoIAlign (forward + backward over four FPN levels) and NMS kernels
// against torchvision's, on the same inputs, threads and device. torchvision's native library is
// loaded at run time (it registers its kernels in LibTorch's dispatcher); LargeDet does not link
// it.
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "command_registry.h"
#include "executables.h"
#include "largedet/core/error.h"
#include "largedet/ops/nms.h"
#include "largedet/ops/roi_align.h"
#include "largedet/tensor/threads.h"
#include "oracle/torchvision_oracle.h"

namespace {

using largedet::tools::median_ms;
namespace ops = largedet::ops;

struct BenchOpsArgs {
  int iterations = 10;
  int threads = 0;
  std::string device = "cpu";
  std::string torchvision_lib;
};

// torchvision next to the binary: the nearest enclosing folder with .venv/bin/python (the build
// tree lives inside the repository, whose venv holds torchvision).
std::string default_torchvision_lib() {
  const std::string python = largedet::tools::find_venv_python();
  return python.empty() ? "" : ops::torchvision::find_library(python);
}

at::Tensor random_boxes(int64_t n, double width, double height, double min_side, double max_side) {
  auto w = at::rand({n}, at::kDouble) * (max_side - min_side) + min_side;
  auto h = at::rand({n}, at::kDouble) * (max_side - min_side) + min_side;
  auto x = at::rand({n}, at::kDouble) * (width - w);
  auto y = at::rand({n}, at::kDouble) * (height - h);
  return at::stack({x, y, x + w, y + h}, 1).to(at::kFloat);
}

void print_row(const std::string& name, double ours, double theirs, bool same) {
  std::printf("%-44s %10.3f %12.3f %8.2fx  %s\n", name.c_str(), ours, theirs, theirs / ours,
              same ? "same result" : "RESULTS DIFFER");
}

void run(const BenchOpsArgs& args) {
  const bool cuda = args.device == "cuda";
  LARGEDET_CHECK(args.device == "cpu" || cuda, "bench ops: --device must be cpu or cuda, got '",
                 args.device, "'");
  LARGEDET_CHECK(!cuda || torch::cuda::is_available(),
                 "bench ops: --device cuda but no CUDA device is visible");
  LARGEDET_CHECK(args.iterations > 0, "bench ops: --iterations must be > 0");
  const int threads = largedet::configure_threads(args.threads);
  const std::string lib =
      args.torchvision_lib.empty() ? default_torchvision_lib() : args.torchvision_lib;
  std::string why;
  LARGEDET_CHECK(ops::torchvision::load(lib, &why), "bench ops: ", why,
                 " (pass --torchvision-lib <venv>/lib/python3.X/site-packages/torchvision/_C.so)");
  const at::Device device = cuda ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  std::printf("device: %s, intra-op threads: %d, torchvision: %s, median of %d runs\n",
              cuda ? "cuda" : "cpu", threads, lib.c_str(), args.iterations);
  std::printf("%-44s %10s %12s %9s\n", "op", "ours ms", "torchvision", "speedup");
  at::manual_seed(0);

  // RoIAlign: 2 images of 800x1088, 256-channel P2-P5, 512 RoIs per image, 7x7, sampling ratio 2,
  // RoIs sent to levels by the FPN rule.
  const int64_t batch = 2, channels = 256, rois_per_image = 512;
  std::vector<at::Tensor> features;
  for (int64_t l = 0; l < 4; ++l)
    features.push_back(at::randn({batch, channels, 200 >> l, 272 >> l}).to(device));
  std::vector<at::Tensor> boxes;
  for (int64_t i = 0; i < batch; ++i)
    boxes.push_back(random_boxes(rois_per_image, 1088, 800, 16, 600));
  auto rois = ops::boxes_to_rois(boxes);
  auto levels = ops::map_rois_to_levels(rois.narrow(1, 1, 4), 2, 5);
  std::vector<at::Tensor> level_rois, grads;
  for (int64_t l = 0; l < 4; ++l) {
    level_rois.push_back(rois.index_select(0, at::nonzero(levels == l).view(-1)).to(device));
    grads.push_back(at::randn({level_rois.back().size(0), channels, 7, 7}).to(device));
  }
  for (bool aligned : {false, true}) {
    std::vector<at::Tensor> ours_out(4), theirs_out(4);
    auto ours = [&] {
      for (int64_t l = 0; l < 4; ++l) {
        ops::RoIAlignOptions o{7, 7, 1.0 / (4 << l), 2, aligned};
        ops::roi_align_forward(features[l], level_rois[l], o);
        ours_out[l] = ops::roi_align_backward(grads[l], level_rois[l], o, batch, channels,
                                              features[l].size(2), features[l].size(3));
      }
    };
    auto theirs = [&] {
      for (int64_t l = 0; l < 4; ++l) {
        ops::torchvision::roi_align(features[l], level_rois[l], 1.0 / (4 << l), 7, 7, 2, aligned);
        theirs_out[l] = ops::torchvision::roi_align_backward(
            grads[l], level_rois[l], 1.0 / (4 << l), 7, 7, batch, channels, features[l].size(2),
            features[l].size(3), 2, aligned);
      }
    };
    const double a = median_ms(args.iterations, cuda, ours);
    const double b = median_ms(args.iterations, cuda, theirs);
    bool same = true;
    for (int64_t l = 0; l < 4; ++l) {
      const double scale = theirs_out[l].abs().max().item<double>();
      same = same && at::allclose(ours_out[l], theirs_out[l], 1e-5, 1e-5 * scale);
    }
    print_row(
        std::string("roi_align fwd+bwd 2x512 RoIs, 256 ch, 7x7") + (aligned ? ", aligned" : ""), a,
        b, same);
    // Forward alone.
    const double fa = median_ms(args.iterations, cuda, [&] {
      for (int64_t l = 0; l < 4; ++l)
        ours_out[l] = ops::roi_align_forward(
            features[l], level_rois[l], ops::RoIAlignOptions{7, 7, 1.0 / (4 << l), 2, aligned});
    });
    const double fb = median_ms(args.iterations, cuda, [&] {
      for (int64_t l = 0; l < 4; ++l)
        theirs_out[l] = ops::torchvision::roi_align(features[l], level_rois[l], 1.0 / (4 << l), 7,
                                                    7, 2, aligned);
    });
    bool fsame = true;
    for (int64_t l = 0; l < 4; ++l)
      fsame = fsame && at::allclose(ours_out[l], theirs_out[l], 1e-5, 1e-5);
    print_row(std::string("  of which forward") + (aligned ? ", aligned" : ""), fa, fb, fsame);
  }

  // NMS: RPN-like random boxes over an 800x1088 image.
  for (int64_t n : {1000, 12000}) {
    for (double threshold : {0.5, 0.7}) {
      auto b = random_boxes(n, 1088, 800, 8, 400).to(device);
      auto s = at::rand({n}).to(device);
      at::Tensor keep_ours, keep_theirs;
      const double a =
          median_ms(args.iterations, cuda, [&] { keep_ours = ops::nms(b, s, threshold); });
      const double t = median_ms(args.iterations, cuda,
                                 [&] { keep_theirs = ops::torchvision::nms(b, s, threshold); });
      char name[64];
      std::snprintf(name, sizeof(name), "nms %lld boxes, IoU %.1f (kept %lld)",
                    static_cast<long long>(n), threshold,
                    static_cast<long long>(keep_ours.numel()));
      print_row(name, a, t, at::equal(keep_ours.cpu(), keep_theirs.cpu()));
    }
  }
}

void setup_bench_ops(CLI::App& cmd) {
  auto args = std::make_shared<BenchOpsArgs>();
  cmd.add_option("--iterations,-n", args->iterations, "timed runs per op (median reported)")
      ->capture_default_str();
  cmd.add_option("--threads", args->threads, "intra-op threads (default: all usable cores)");
  cmd.add_option("--device", args->device, "cpu or cuda")->capture_default_str();
  cmd.add_option("--torchvision-lib", args->torchvision_lib,
                 "torchvision's _C.so (default: from the .venv above the binary)");
  cmd.callback([args] { run(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND(
    "bench ops",
    "Time RoIAlign forward+backward (4 FPN levels) and NMS (1k/12k boxes), ours "
    "against torchvision's kernels on the same threads and device",
    setup_bench_ops);
