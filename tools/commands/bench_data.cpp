// largedet bench data: the input pipeline's throughput (read + decode + collate into 8-bit planes,
// per worker thread and with N loader workers), the bytes per batch that cross to the device, the
// model's preprocessing time per batch on the device (resize + flip + normalise + pad), and the
// annotation load time against Python's json.load of the same file.
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <tuple>

#include "bench_timing.h"
#include "command_registry.h"
#include "largedet/core/error.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/data/loader.h"
#include "largedet/modeling/detector.h"

namespace {

using largedet::tools::BenchClock;
using largedet::tools::seconds_since;
namespace data = largedet::data;

struct BenchDataArgs {
  std::string dataset;
  std::string annotations;  // default: DATASET/annotations/instances_train.json
  std::string images;       // default: DATASET/train
  std::string python;       // for the json.load comparison; empty: skipped
  int workers = 2;
  int batch = 2;
  int batches = 60;
  int short_side = 800;
  int max_size = 1333;
  int repeats = 3;
  bool annotations_only = false;
  std::string device = "cpu";  // where the model's preprocessing is timed
};

// CPU seconds of this process: the machine is shared, so wall-clock rates understate what one
// core does; we report both.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Python's json.load time of `path` (best of `repeats`), or a negative number when unavailable.
double python_json_load(const std::string& python, const std::string& path, int repeats) {
  if (python.empty()) return -1;
  const std::string cmd = "'" + python + "' -c \"import json,sys,time\nb=1e9\nfor _ in range(" +
                          std::to_string(repeats) +
                          "):\n t=time.perf_counter(); json.load(open(sys.argv[1])); "
                          "b=min(b,time.perf_counter()-t)\nprint(b)\" '" +
                          path + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  double t = -1;
  if (std::fscanf(pipe, "%lf", &t) != 1) t = -1;
  return pclose(pipe) == 0 ? t : -1;
}

data::LoaderOptions loader_options(const BenchDataArgs& a, int workers) {
  data::LoaderOptions o;
  o.num_workers = workers;
  o.prefetch = std::max(2, 2 * workers);
  o.mapper.min_sizes = {a.short_side};
  o.mapper.max_size = a.max_size;
  return o;
}

struct Rate {
  double wall = 0;  // images per wall-clock second
  double cpu = 0;   // images per CPU second of the process (all threads)
};

// Images per second through a loader with `workers` threads (0: the calling thread).
Rate throughput(const std::shared_ptr<data::Dataset>& d, const BenchDataArgs& a, int workers) {
  data::BatchSamplerOptions so;
  so.batch_size = a.batch;
  so.infinite = true;
  data::DataLoader loader(d, data::BatchSampler(data::DistributedSampler(d->size()), *d, so),
                          loader_options(a, workers));
  for (int k = 0; k < 3; ++k) loader.next();  // warm up (page cache, allocator, prefetch)
  const auto t = BenchClock::now();
  const double cpu = process_cpu_seconds();
  int64_t images = 0;
  for (int k = 0; k < a.batches; ++k) images += loader.next()->size();
  return {images / seconds_since(t), images / (process_cpu_seconds() - cpu)};
}

// CPU time per image of each stage, in the calling thread.
void stages(const data::Dataset& d, const BenchDataArgs& a) {
  const int n = std::min<int>(40, static_cast<int>(d.size()));
  std::vector<std::string> files(n);
  for (int i = 0; i < n; ++i) data::read_bytes(d.records[i].path, &files[i]);
  auto time = [&](const char* name, auto&& body) {
    const double t = process_cpu_seconds();
    for (int i = 0; i < n; ++i) body(i);
    std::printf("    %-44s %.2f ms/image (CPU)\n", name, (process_cpu_seconds() - t) * 1e3 / n);
  };
  auto bytes = [&](int i) { return reinterpret_cast<const uint8_t*>(files[i].data()); };
  std::vector<data::Image> decoded(n);
  time("decode (full size)",
       [&](int i) { decoded[i] = data::decode_image(bytes(i), files[i].size()); });
  time("collate: 8-bit planes + pad (1)", [&](int i) {
    std::vector<data::Sample> s(1);
    s[0].image = decoded[i];
    std::tie(s[0].height, s[0].width) = data::resize_shortest_edge_size(
        decoded[i].height, decoded[i].width, a.short_side, a.max_size);
    s[0].original_height = decoded[i].height;
    s[0].original_width = decoded[i].width;
    s[0].flipped = i % 2;
    data::collate(std::move(s));
  });
  time("mapper: read + decode + targets",
       [&](int i) { data::map_record(d.records[i], loader_options(a, 0).mapper, i); });
}

// What a batch costs past the loader: the bytes that cross to the device (8-bit at the decoded
// size) against the float32 batch at the network size that the loader used to build, and the
// model's preprocessing of it on `device` (median over the batches, after one warm-up).
void device_side(const std::shared_ptr<data::Dataset>& d, const BenchDataArgs& a,
                 const c10::Device& device) {
  data::BatchSamplerOptions so;
  so.batch_size = a.batch;
  so.infinite = true;
  data::DataLoader loader(d, data::BatchSampler(data::DistributedSampler(d->size()), *d, so),
                          loader_options(a, 0));
  largedet::modeling::Transform transform;
  const int n = std::min(a.batches, 20);
  double bytes = 0, float_bytes = 0;
  std::vector<double> ms;
  for (int k = 0; k <= n; ++k) {
    const data::Batch batch = loader.next()->to(device, /*non_blocking=*/false);
    const auto t = BenchClock::now();
    const auto images = transform(batch);
    if (device.is_cuda()) torch::cuda::synchronize();
    if (k == 0) continue;
    ms.push_back(seconds_since(t) * 1e3);
    bytes += static_cast<double>(batch.image_bytes());
    float_bytes += static_cast<double>(images.tensor.numel()) * sizeof(float);
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "  per batch of %d: %.2f MB to the device (8-bit, decoded size) instead of %.2f MB "
      "(float32 at the network size): %.1fx fewer\n",
      a.batch, bytes / n / 1e6, float_bytes / n / 1e6, float_bytes / bytes);
  std::printf(
      "  model preprocessing on %s (resize + flip + normalise + pad): %.2f ms per batch "
      "(median of %d)\n",
      device.str().c_str(), ms[ms.size() / 2], n);
}

void run(const BenchDataArgs& a) {
  namespace fs = std::filesystem;
  const std::string ann = !a.annotations.empty()
                              ? a.annotations
                              : (fs::path(a.dataset) / "annotations/instances_train.json").string();
  const std::string images =
      !a.images.empty() ? a.images : (fs::path(a.dataset) / "train").string();
  // Our figures are per thread: ATen's own pool would otherwise help collate behind our back.
  at::set_num_threads(1);

  std::printf("annotations: %s (%.1f MB)\n", ann.c_str(), fs::file_size(ann) / 1e6);
  double parse = 1e9, view = 1e9, total = 1e9;
  size_t records = 0;
  for (int r = 0; r < a.repeats; ++r) {
    data::CocoDatasetOptions o;
    o.image_root = images;
    auto t = BenchClock::now();
    records = data::load_coco_dataset(ann, o).size();
    total = std::min(total, seconds_since(t));
    t = BenchClock::now();
    const auto coco = largedet::evaluation::load_coco_json(ann);
    parse = std::min(parse, seconds_since(t));
    t = BenchClock::now();
    data::coco_to_dataset(coco, ann, o);
    view = std::min(view, seconds_since(t));
  }
  std::printf("  data::load_coco_dataset (what training calls): %.3f s, best of %d (%zu images)\n",
              total, a.repeats, records);
  std::printf("    evaluation::load_coco_json alone (simdjson parse): %.3f s\n", parse);
  std::printf("    training view from a const parse (copies polygons; load moves them): %.3f s\n",
              view);
  const double py = python_json_load(a.python, ann, a.repeats);
  if (py >= 0) {
    std::printf("  python json.load: %.3f s -> data::load_coco_dataset is %.1fx faster\n", py,
                py / total);
  } else {
    std::printf("  python json.load: skipped (pass --python PATH)\n");
  }

  if (a.annotations_only) return;
  data::CocoDatasetOptions o;
  o.image_root = images;
  o.load_segmentation = false;
  auto d = std::make_shared<data::Dataset>(data::load_coco_dataset(ann, o));
  const auto& r0 = d->records.at(0);
  std::printf("pipeline: %zu images like %dx%d, short side %d (max %d), batch %d, %d batches\n",
              d->size(), r0.width, r0.height, a.short_side, a.max_size, a.batch, a.batches);
  stages(*d, a);
  device_side(d, a, c10::Device(a.device));
  const Rate single = throughput(d, a, 0);
  std::printf(
      "  1 thread (read + decode + collate): %.1f images/s wall, %.1f per "
      "CPU second\n",
      single.wall, single.cpu);
  if (a.workers > 0) {
    const Rate multi = throughput(d, a, a.workers);
    std::printf(
        "  loader, %d workers: %.1f images/s wall total (%.1f per worker), %.1f per CPU "
        "second\n",
        a.workers, multi.wall, multi.wall / a.workers, multi.cpu);
  }
}

void setup_bench_data(CLI::App& cmd) {
  auto args = std::make_shared<BenchDataArgs>();
  cmd.add_option("--dataset", args->dataset, "a directory laid out as `largedet synth` writes");
  cmd.add_option("--annotations", args->annotations, "COCO JSON (default DATASET/annotations/...)");
  cmd.add_option("--images", args->images, "image directory (default DATASET/train)");
  cmd.add_option("--workers", args->workers, "loader worker threads")->check(CLI::Range(0, 256));
  cmd.add_option("--batch", args->batch, "images per batch")->check(CLI::Range(1, 1024));
  cmd.add_option("--batches", args->batches, "timed batches")->check(CLI::Range(1, 100000));
  cmd.add_option("--short-side", args->short_side, "resize target")->check(CLI::Range(1, 8192));
  cmd.add_option("--max-size", args->max_size, "long side limit");
  cmd.add_option("--repeats", args->repeats, "annotation loads (best is kept)")
      ->check(CLI::Range(1, 100));
  cmd.add_option("--device", args->device, "device of the model's preprocessing (cpu, cuda)");
  cmd.add_option("--python", args->python, "Python for the json.load comparison");
  cmd.add_flag("--annotations-only", args->annotations_only,
               "time annotation loading only (no images needed)");
  cmd.callback([args] {
    if (args->dataset.empty() && args->annotations.empty()) {
      throw largedet::Error("bench data needs --dataset or --annotations", "",
                            "make one with: largedet synth --out DIR --images 200 --size 640 "
                            "--portrait-fraction 0");
    }
    run(*args);
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND(
    "bench data",
    "Time the input pipeline (decode, collate per worker thread; the model's preprocessing) "
    "and annotation loading against Python's json.load",
    setup_bench_data);
