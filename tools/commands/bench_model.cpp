// largedet bench model: one training step (forward, backward, SGD) and
// inference per image of a detector, ours against torchvision's on the same
// input size, batch, threads and device (torchvision runs in the .venv's
// Python, built as the parity tests build it: ResNet-FPN with FrozenBatchNorm2d
// and three trainable stages, 91 classes, random weights). Under `largedet
// launch` each rank runs the step data-parallel (GradientSync; SyncBN with
// --norm SyncBN) and --profile counts the collectives' host waits too.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench_timing.h"
#include "command_registry.h"
#include "executables.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/distributed/gradient_sync.h"
#include "largedet/distributed/host_waits.h"
#include "largedet/distributed/process_group.h"
#include "largedet/distributed/sync_batch_norm.h"
#include "largedet/modeling/detector.h"
#include "largedet/ops/autocast.h"
#include "largedet/ops/host_sync.h"
#include "largedet/tensor/threads.h"
#ifdef LARGEDET_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace {

using largedet::tools::median_ms;
namespace modeling = largedet::modeling;

struct BenchModelArgs {
  std::string model = "faster_rcnn_R_50_FPN";
  int batch = 2;
  int size = 512;
  int iterations = 5;
  int threads = 0;
  std::string device = "cpu";
  std::string amp = "none";       // fp16, bf16: both forwards under autocast in that dtype
  std::string norm = "FrozenBN";  // the backbone's and FPN's (torchvision's model: FrozenBN)
  bool profile = false;
  std::string trace;   // a folder: one training step of each side as a Chrome trace
  std::string python;  // default: the .venv above the binary; "none" skips torchvision
};

void print_named(const std::map<std::string, int64_t>& counts, double per) {
  std::vector<std::pair<int64_t, std::string>> named;
  for (const auto& [name, n] : counts) named.emplace_back(n, name);
  std::sort(named.rbegin(), named.rend());
  for (const auto& [n, name] : named)
    std::printf("  %-40s %g\n", name.c_str(), static_cast<double>(n) / per);
}

// Syncs, ATen ops and uploads per `what` (the counts over `per` of them), each sync and upload by
// name.
void print_counts(const char* what, const largedet::ops::HostSyncCounts& c, double per) {
  const auto rounded = [per](int64_t n) { return static_cast<long long>(std::llround(n / per)); };
  std::printf("host syncs per %s: %lld\n", what, rounded(c.syncs));
  print_named(c.syncs_by_name, per);
  std::printf("ATen ops per %s: %lld\n", what, rounded(c.ops));
  std::printf("uploads (host data sent to the device, pinned, non-blocking) per %s: %lld\n", what,
              rounded(c.uploads));
  print_named(c.uploads_by_name, per);
}

struct ModelSpec {
  std::string arch;
  int depth;
  bool mask;
  std::string torchvision;  // class name
};

ModelSpec spec(const std::string& name) {
  if (name == "faster_rcnn_R_50_FPN") return {"GeneralizedRCNN", 50, false, "FasterRCNN"};
  if (name == "faster_rcnn_R_101_FPN") return {"GeneralizedRCNN", 101, false, "FasterRCNN"};
  if (name == "mask_rcnn_R_50_FPN") return {"GeneralizedRCNN", 50, true, "MaskRCNN"};
  if (name == "retinanet_R_50_FPN") return {"RetinaNet", 50, false, "RetinaNet"};
  throw largedet::Error("unknown model '" + name + "'", "--model",
                        "use faster_rcnn_R_50_FPN, faster_rcnn_R_101_FPN, mask_rcnn_R_50_FPN or "
                        "retinanet_R_50_FPN");
}

// torchvision's times as "train_ms infer_ms_per_image", or {-1, -1}.
std::pair<double, double> torchvision_times(const BenchModelArgs& a, const ModelSpec& s,
                                            int threads) {
  std::string python = a.python.empty() ? largedet::tools::find_venv_python() : a.python;
  if (python.empty() || python == "none") return {-1, -1};
  std::string script = R"PY(
import sys, time, torch, torchvision
from torchvision.models import resnet50, resnet101
from torchvision.models.detection import FasterRCNN, MaskRCNN, RetinaNet
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d
cls, depth, batch, size, iters, threads, device, amp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8]
autocast = lambda: torch.autocast(device, dtype={"fp16": torch.float16, "bf16": torch.bfloat16}.get(amp, torch.float32), enabled=amp != "none")
torch.set_num_threads(threads)
torch.manual_seed(0)
body = (resnet50 if depth == 50 else resnet101)(norm_layer=FrozenBatchNorm2d)
if cls == "RetinaNet":
    bb = _resnet_fpn_extractor(body, 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
else:
    bb = _resnet_fpn_extractor(body, 3)
m = {"FasterRCNN": FasterRCNN, "MaskRCNN": MaskRCNN, "RetinaNet": RetinaNet}[cls](bb, 91, min_size=size, max_size=size).to(device)
g = torch.Generator().manual_seed(0)
images = [(torch.rand(3, size, size, generator=g)).to(device) for _ in range(batch)]
targets = []
for _ in range(batch):
    xy = torch.rand(5, 2, generator=g) * size * 0.6
    wh = 16 + torch.rand(5, 2, generator=g) * size * 0.3
    t = {"boxes": torch.cat([xy, xy + wh], 1).to(device), "labels": torch.randint(1, 91, (5,), generator=g).to(device)}
    if cls == "MaskRCNN":
        t["masks"] = torch.zeros(5, size, size, dtype=torch.uint8, device=device)
        for i in range(5):
            b = t["boxes"][i].int().tolist(); t["masks"][i, b[1]:b[3], b[0]:b[2]] = 1
    targets.append(t)
opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.001, momentum=0.9, weight_decay=1e-4)
def sync():
    if device == "cuda": torch.cuda.synchronize()
def step():
    m.train()
    with autocast(): loss = sum(m(images, targets).values())
    opt.zero_grad(); loss.backward(); opt.step()
def infer():
    m.eval()
    with torch.no_grad(), autocast(): m(images)
def median(fn):
    fn(); sync(); ts = []
    for _ in range(iters):
        t0 = time.perf_counter(); fn(); sync(); ts.append((time.perf_counter() - t0) * 1000)
    ts.sort(); return ts[len(ts) // 2]
print("RESULT", median(step), median(infer) / batch)
if len(sys.argv) > 9:
    from torch.profiler import profile, ProfilerActivity
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=acts) as prof:
        step(); sync()
    prof.export_chrome_trace(sys.argv[9])
)PY";
  auto dir = std::filesystem::temp_directory_path();
  auto file = dir / ("largedet_bench_model_" + std::to_string(::getpid()) + ".py");
  {
    FILE* f = std::fopen(file.c_str(), "w");
    LARGEDET_CHECK(f, "bench model: cannot write ", file.string());
    std::fputs(script.c_str(), f);
    std::fclose(f);
  }
  std::string cmd =
      "'" + python + "' '" + file.string() + "' " + s.torchvision + " " + std::to_string(s.depth) +
      " " + std::to_string(a.batch) + " " + std::to_string(a.size) + " " +
      std::to_string(a.iterations) + " " + std::to_string(threads) + " " + a.device + " " + a.amp +
      (a.trace.empty() ? "" : " '" + a.trace + "/torchvision_train_step.json'") + " 2>/dev/null";
  std::pair<double, double> result{-1, -1};
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char line[512];
    while (std::fgets(line, sizeof line, p)) {
      double t = 0, i = 0;
      if (std::sscanf(line, "RESULT %lf %lf", &t, &i) == 2) result = {t, i};
    }
    ::pclose(p);
  }
  std::remove(file.c_str());
  return result;
}

// One call of `step` under the PyTorch profiler, saved as a Chrome trace (chrome://tracing,
// Perfetto) to compare with torchvision's, which `--trace` records the same way.
void save_trace(const std::function<void()>& step, bool cuda, const std::string& path) {
  namespace profiler = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  std::set<ActivityType> activities{ActivityType::CPU};
  if (cuda) activities.insert(ActivityType::CUDA);
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  try {
    step();
    if (cuda) torch::cuda::synchronize();
  } catch (...) {
    profiler::disableProfiler();
    throw;
  }
  profiler::disableProfiler()->save(path);
}

#ifdef LARGEDET_WITH_CUDA
// CUDA's own count of the host synchronisations `step` makes, the check of HostSyncProfiler's:
// in sync debug mode every synchronising CUDA call warns, and a warning handler counts them.
int64_t cuda_sync_debug_count(const std::function<void()>& step) {
  struct Counter : c10::WarningHandler {
    int64_t count = 0;
    void process(const c10::Warning& warning) override {
      if (warning.msg().find("synchronizing CUDA operation") != std::string::npos) ++count;
    }
  } counter;
  c10::WarningUtils::WarningHandlerGuard guard(&counter);
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
  try {
    step();
  } catch (...) {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    throw;
  }
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  return counter.count;
}
#endif

void run(const BenchModelArgs& a) {
  const bool cuda = a.device == "cuda";
  LARGEDET_CHECK(!cuda || torch::cuda::is_available(), "bench model: --device cuda without a GPU");
  LARGEDET_CHECK(a.batch >= 1 && a.size >= 64 && a.iterations >= 1,
                 "bench model: need --batch >= 1, --size >= 64, --iterations >= 1");
  namespace dist = largedet::distributed;
  dist::ContextOptions context;
  context.cuda_model = cuda;
  const auto group = dist::init(context);
  const bool main_rank = group->rank() == 0;
  const int threads = largedet::configure_threads(a.threads, group->context().local_world_size);
  const auto s = spec(a.model);
  auto config = largedet::Config::defaults();
  // Other norms train every stage, as the SyncBN recipes do (configs/Base-LargeDet.yaml).
  if (a.norm != "FrozenBN")
    config.apply_overrides(
        {"MODEL.RESNETS.NORM=" + a.norm, "MODEL.FPN.NORM=" + a.norm, "MODEL.BACKBONE.FREEZE_AT=0"});
  config.apply_overrides({"MODEL.META_ARCHITECTURE=" + s.arch,
                          "MODEL.RESNETS.DEPTH=" + std::to_string(s.depth),
                          std::string("MODEL.MASK_ON=") + (s.mask ? "true" : "false"),
                          "MODEL.ROI_HEADS.NUM_CLASSES=90", "MODEL.RETINANET.NUM_CLASSES=90",
                          "INPUT.MIN_SIZE_TEST=" + std::to_string(a.size),
                          "INPUT.MAX_SIZE_TEST=" + std::to_string(a.size)});
  torch::manual_seed(0);
  auto model = modeling::build_detector(config);
  // Under launch each rank takes its own GPU (docs/distributed.md).
  const torch::Device device =
      cuda ? torch::Device(torch::kCUDA,
                           static_cast<c10::DeviceIndex>(group->context().cuda_device()))
           : torch::Device(torch::kCPU);
  model->to(device);
  // torchvision's 0..1 inputs and mean/std: the same images, the same
  // arithmetic.
  model->transform.options.pixel_mean = {0.485, 0.456, 0.406};
  model->transform.options.pixel_std = {0.229, 0.224, 0.225};
  std::vector<torch::Tensor> images;
  std::vector<modeling::Target> targets;
  for (int i = 0; i < a.batch; ++i) {
    images.push_back(torch::rand({3, a.size, a.size}).to(device));
    auto xy = torch::rand({5, 2}) * a.size * 0.6;
    auto wh = 16 + torch::rand({5, 2}) * a.size * 0.3;
    modeling::Target t{torch::cat({xy, xy + wh}, 1).to(device),
                       torch::randint(1, 91, {5}, torch::kLong).to(device),
                       {}};
    if (s.mask) {
      t.masks = torch::zeros({5, a.size, a.size}, torch::kUInt8);
      auto b = t.boxes.to(torch::kInt).cpu();
      for (int k = 0; k < 5; ++k) {
        auto r = b[k];
        t.masks[k]
            .slice(0, r[1].item<int>(), r[3].item<int>())
            .slice(1, r[0].item<int>(), r[2].item<int>())
            .fill_(1);
      }
      t.masks = t.masks.to(device);
    }
    targets.push_back(t);
  }
  std::unique_ptr<dist::GradientSync> gradient_sync;
  if (group->size() > 1) gradient_sync = std::make_unique<dist::GradientSync>(*model, group);
  std::vector<torch::Tensor> trainable;
  for (auto& p : model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  torch::optim::SGD opt(trainable,
                        torch::optim::SGDOptions(0.001).momentum(0.9).weight_decay(1e-4));
  LARGEDET_CHECK(a.amp != "fp16" || cuda, "bench model: --amp fp16 needs --device cuda",
                 "use --amp bf16 on the CPU");
  const bool amp = a.amp != "none";
  const auto amp_dtype = a.amp == "fp16" ? torch::kHalf : torch::kBFloat16;
  // The model's forward and backward: what --profile counts for a training step.
  auto forward_backward = [&] {
    model->train();
    torch::Tensor total = torch::zeros({}, torch::TensorOptions().device(device));
    {
      largedet::ops::AutocastGuard autocast(amp, device.type(), amp_dtype);
      for (auto& [k, v] : model->losses(images, targets)) total = total + v;
    }
    opt.zero_grad();
    total.backward();
    if (gradient_sync) gradient_sync->finish();
  };
  auto detect = [&] {
    model->eval();
    torch::NoGradGuard ng;
    largedet::ops::AutocastGuard autocast(amp, device.type(), amp_dtype);
    model->detect(images);
  };
  auto train_step = [&] {
    forward_backward();
    opt.step();
  };
  const double train_ms = median_ms(a.iterations, cuda, train_step);
  const double infer_ms = median_ms(a.iterations, cuda, detect) / a.batch;
  if (!a.trace.empty() && main_rank) {
    std::filesystem::create_directories(a.trace);
    save_trace(train_step, cuda, a.trace + "/largedet_train_step.json");
  } else if (!a.trace.empty()) {
    train_step();  // rank 0's traced step's collectives
  }
#ifdef LARGEDET_WITH_CUDA
  const bool sync_debug = cuda;  // CUDA's own count checks the profile's
#else
  const bool sync_debug = false;
#endif
  if (!main_rank) {
    if (a.profile) {  // the collectives' counterparts of rank 0's counted steps
      forward_backward();
      detect();
      if (sync_debug) forward_backward();  // rank 0's CUDA sync debug count
    }
    return;
  }
  std::printf(
      "model %s, batch %d, %dx%d, device %s, norm %s, intra-op threads %d, "
      "median of %d\n",
      a.model.c_str(), a.batch, a.size, a.size, a.device.c_str(), a.norm.c_str(), threads,
      a.iterations);
  if (group->size() > 1)
    std::printf("data-parallel: %d ranks (%s), rank 0's times; batch %d per rank\n", group->size(),
                group->context().backend.c_str(), a.batch);
  // torchvision's side is one process with FrozenBN: compared only when ours is too.
  const bool comparable = a.norm == "FrozenBN" && group->size() == 1;
  auto [tv_train, tv_infer] =
      comparable ? torchvision_times(a, s, threads) : std::pair<double, double>{-1, -1};
  std::printf("  train step:  largedet %9.1f ms", train_ms);
  if (tv_train > 0)
    std::printf("   torchvision %9.1f ms   ratio (torchvision/largedet) %.2fx", tv_train,
                tv_train / train_ms);
  std::printf("\n  inference:   largedet %9.1f ms/image", infer_ms);
  if (tv_infer > 0)
    std::printf("   torchvision %9.1f ms/image   ratio %.2fx", tv_infer, tv_infer / infer_ms);
  std::printf("\n");
  if (!comparable)
    std::printf("  torchvision: not compared (its model is one process with FrozenBN)\n");
  else if (tv_train <= 0)
    std::printf("  torchvision: unavailable (pass --python PATH)\n");
  if (!a.profile) return;
  // After the timed runs (warm: anchors cached, memory allocated), one of each, counted.
  largedet::ops::HostSyncCounts train_counts, infer_counts;
  dist::HostWaitCounts train_waits;
  {
    largedet::ops::HostSyncProfiler profiler;
    dist::HostWaitCounter waits;
    forward_backward();
    train_counts = profiler.counts();
    train_waits = waits.counts();
  }
  {
    largedet::ops::HostSyncProfiler profiler;
    detect();
    infer_counts = profiler.counts();
  }
  std::printf("profile (%s, %d images per device, forward and backward of the model):\n",
              a.model.c_str(), a.batch);
  print_counts("training step", train_counts, 1);
  if (group->size() > 1) {
    int64_t sync_norms = 0;
    for (const auto& m : model->modules())
      if (dynamic_cast<const dist::SyncBatchNorm2dImpl*>(m.get())) ++sync_norms;
    std::printf(
        "host waits on collectives per training step (%s): %lld (%lld SyncBN layers, %zu gradient "
        "buckets)\n",
        group->context().backend.c_str(), static_cast<long long>(train_waits.waits),
        static_cast<long long>(sync_norms), gradient_sync->bucket_parameters().size());
    print_named(train_waits.by_op, 1);
  }
  print_counts("inference batch", infer_counts, 1);
  std::printf("host syncs per inference image: %g\n",
              static_cast<double>(infer_counts.syncs) / a.batch);
#ifdef LARGEDET_WITH_CUDA
  if (sync_debug)
    std::printf("CUDA sync debug mode, synchronising calls per training step: %lld\n",
                static_cast<long long>(cuda_sync_debug_count(forward_backward)));
#endif
}

void setup_bench_model(CLI::App& cmd) {
  auto args = std::make_shared<BenchModelArgs>();
  cmd.add_option("--model", args->model,
                 "faster_rcnn_R_50_FPN, faster_rcnn_R_101_FPN, mask_rcnn_R_50_FPN, "
                 "retinanet_R_50_FPN")
      ->capture_default_str();
  cmd.add_option("--batch", args->batch, "images per step")->capture_default_str();
  cmd.add_option("--size", args->size, "square input side in pixels")->capture_default_str();
  cmd.add_option("--iterations,-n", args->iterations, "timed runs (median reported)")
      ->capture_default_str();
  cmd.add_option("--threads", args->threads, "intra-op threads (default: all usable cores)");
  cmd.add_option("--device", args->device, "cpu or cuda")->capture_default_str();
  cmd.add_option("--norm", args->norm,
                 "the backbone's and FPN's norm: FrozenBN (torchvision's), BN, GN or SyncBN "
                 "(other than FrozenBN: every stage trains, and torchvision is not compared)")
      ->check(CLI::IsMember({"FrozenBN", "BN", "GN", "SyncBN"}))
      ->capture_default_str();
  cmd.add_option("--amp", args->amp,
                 "both forwards (ours, torchvision's) under autocast: none, fp16 (CUDA) or bf16")
      ->check(CLI::IsMember({"none", "fp16", "bf16"}))
      ->capture_default_str();
  cmd.add_flag("--profile", args->profile,
               "count host synchronisations (copies between host and device included), ATen ops "
               "and uploads per training step and inference batch (docs/modeling.md)");
  cmd.add_option("--trace", args->trace,
                 "folder for one training step of each side as a Chrome trace "
                 "(largedet_train_step.json, torchvision_train_step.json)");
  cmd.add_option("--python", args->python,
                 "Python with torchvision (default: the .venv above the "
                 "binary; none: skip)");
  cmd.callback([args] { run(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("bench model",
                          "Time a detector's training step and inference per image, ours against "
                          "torchvision's on the same input, threads and device",
                          setup_bench_model);
