// largedet bench eval: COCO bbox and segm evaluation of a synthetic set (default 5,000 images x
// 100 detections), ours against the pycocotools-compatible peers on the same files and machine:
// pycocotools, faster-coco-eval, ultrafast-pycocotools and hotcoco, each run by bench/eval_peer.py
// in a subprocess (bench/setup_eval_peers.sh makes a venv with all of them). Every tool is timed
// end to end: read the ground truth and the results, evaluate, accumulate, summarize. Ours is timed
// in-process and as a whole `largedet evaluate` process (start-up included).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "bench_eval_oid.h"
#include "command_registry.h"
#include "executables.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/threads.h"
#include "largedet/evaluation/coco_eval.h"
#include "stopwatch.h"

namespace {

using namespace largedet::evaluation;
using largedet::tools::BenchClock;
using largedet::tools::seconds_since;

struct BenchEvalArgs {
  int images = 5000;
  int detections = 100;
  int threads = 0;
  uint32_t seed = 1;
  std::string workdir = "/tmp/largedet_bench_eval";
  std::string python;
  std::string script = "bench/eval_peer.py";
  std::string peers = "pycocotools,faster-coco-eval,ultrafast-pycocotools,hotcoco";
  bool skip_python = false;
  std::string type = "coco";
  int classes = 500;  // oid
  bool images_set = false;
};

std::vector<double> star_polygon(std::mt19937& rng, double cx, double cy, double radius) {
  std::uniform_real_distribution<double> u(0, 1);
  const int n = 8 + int(rng() % 9);
  std::vector<double> xy;
  for (int i = 0; i < n; ++i) {
    const double angle = 2 * M_PI * (i + 0.5 * u(rng)) / n, r = radius * (0.6 + 0.4 * u(rng));
    xy.push_back(std::round((cx + r * std::cos(angle)) * 100) / 100);
    xy.push_back(std::round((cy + r * std::sin(angle)) * 100) / 100);
  }
  return xy;
}

BoxXywh polygon_box(const std::vector<double>& xy) {
  double x0 = 1e18, y0 = 1e18, x1 = -1e18, y1 = -1e18;
  for (size_t i = 0; i < xy.size(); i += 2) {
    x0 = std::min(x0, xy[i]), x1 = std::max(x1, xy[i]);
    y0 = std::min(y0, xy[i + 1]), y1 = std::max(y1, xy[i + 1]);
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

// COCO-like: 640x480 images, ~7 objects of 80 categories, masks as polygons; detections are
// jittered copies of the objects plus false positives, `per_image` per image, scored randomly.
void make_synthetic(const BenchEvalArgs& args, CocoDataset& gt, std::vector<Detection>& boxes,
                    std::vector<Detection>& masks) {
  std::mt19937 rng(args.seed);
  std::uniform_real_distribution<double> u(0, 1);
  for (int c = 1; c <= 80; ++c) gt.categories.push_back({c, "class" + std::to_string(c), ""});
  int64_t ann_id = 1;
  for (int i = 0; i < args.images; ++i) {
    const uint32_t w = 640, h = 480;
    gt.images.push_back({i + 1, std::to_string(i + 1) + ".jpg", int32_t(w), int32_t(h)});
    std::vector<std::pair<int64_t, std::vector<double>>> objects;
    const int num_objects = 1 + int(rng() % 13);
    for (int o = 0; o < num_objects; ++o) {
      CocoAnnotation ann;
      ann.id = ann_id++;
      ann.image_id = i + 1;
      ann.category_id = 1 + int64_t(rng() % 80);
      const double radius = 4 + std::pow(u(rng), 2) * 200;
      auto xy = star_polygon(rng, u(rng) * w, u(rng) * h, radius);
      ann.segmentation.kind = Segmentation::Kind::kPolygons;
      ann.segmentation.polygons = {xy};
      const Rle rle = rle_from_polygon(xy, h, w);
      ann.area = double(rle_area(rle));
      ann.bbox = rle_to_bbox(rle);
      ann.has_bbox = true;
      ann.iscrowd = u(rng) < 0.01;
      gt.annotations.push_back(std::move(ann));
      objects.emplace_back(gt.annotations.back().category_id, std::move(xy));
    }
    for (int d = 0; d < args.detections; ++d) {
      Detection det;
      det.image_id = i + 1;
      det.score = std::round(u(rng) * 1000) / 1000;
      std::vector<double> xy;
      if (d < 3 * num_objects && u(rng) < 0.8) {
        const auto& [category, object] = objects[size_t(d) % objects.size()];
        det.category_id = u(rng) < 0.9 ? category : 1 + int64_t(rng() % 80);
        std::normal_distribution<double> noise(0, 1 + u(rng) * 4);
        const double dx = noise(rng), dy = noise(rng);
        for (size_t k = 0; k < object.size(); k += 2) {
          xy.push_back(std::round((object[k] + dx + noise(rng) * 0.3) * 100) / 100);
          xy.push_back(std::round((object[k + 1] + dy + noise(rng) * 0.3) * 100) / 100);
        }
      } else {
        det.category_id = 1 + int64_t(rng() % 80);
        xy = star_polygon(rng, u(rng) * w, u(rng) * h, 4 + u(rng) * 120);
      }
      Detection box = det, mask = det;
      box.has_bbox = true;
      box.bbox = polygon_box(xy);
      mask.segmentation.kind = Segmentation::Kind::kCompressedRle;
      mask.segmentation.rle = Rle{h, w, {}};
      mask.segmentation.compressed = rle_to_string(rle_from_polygon(xy, h, w));
      boxes.push_back(std::move(box));
      masks.push_back(std::move(mask));
    }
  }
  gt.build_index();
}

std::string gt_to_json(const CocoDataset& gt) {
  using nlohmann::json;
  json root = {
      {"images", json::array()}, {"annotations", json::array()}, {"categories", json::array()}};
  for (const auto& img : gt.images)
    root["images"].push_back({{"id", img.id},
                              {"file_name", img.file_name},
                              {"width", img.width},
                              {"height", img.height}});
  for (const auto& c : gt.categories)
    root["categories"].push_back({{"id", c.id}, {"name", c.name}});
  for (const auto& a : gt.annotations)
    root["annotations"].push_back({{"id", a.id},
                                   {"image_id", a.image_id},
                                   {"category_id", a.category_id},
                                   {"bbox", a.bbox},
                                   {"area", a.area},
                                   {"iscrowd", a.iscrowd ? 1 : 0},
                                   {"segmentation", a.segmentation.polygons}});
  return root.dump();
}

struct Timing {
  double seconds = NAN;
  double gt_seconds = NAN, results_seconds = NAN;  // ours: the parse of each file (in seconds)
  std::array<double, 12> stats{};
};

Timing run_ours(const std::string& gt_path, const std::string& results_path, IouType type,
                int threads) {
  const auto start = BenchClock::now();
  const CocoDataset gt = load_coco_json(gt_path);
  Timing t;
  t.gt_seconds = seconds_since(start);
  const auto detections = load_coco_results(results_path, gt, threads);
  t.results_seconds = seconds_since(start) - t.gt_seconds;
  CocoEvalParams params;
  params.iou_type = type;
  params.threads = threads;
  const CocoEvalResult result = evaluate_coco(gt, detections, params);
  const std::string summary = result.summary();  // as pycocotools' summarize() does
  t.seconds = seconds_since(start);
  t.stats = result.stats;
  return t;
}

struct PeerTiming {
  std::string version;  // empty: not installed in --python's environment
  Timing timing;
};

PeerTiming run_peer(const BenchEvalArgs& args, const std::string& tool, const std::string& gt_path,
                    const std::string& results_path, const char* type) {
  const std::string out = args.workdir + "/" + tool + "_" + type + ".json";
  const std::string command = "'" + args.python + "' '" + args.script + "' '" + tool + "' '" +
                              gt_path + "' '" + results_path + "' " + type + " > '" + out + "'";
  if (std::system(command.c_str()) != 0) {
    throw largedet::Error(tool + " run failed: " + command, "bench eval",
                          "pass --python with a Python that has it (bench/setup_eval_peers.sh), "
                          "drop it from --peers, or --skip-python");
  }
  const auto parsed = nlohmann::json::parse(largedet::read_file(out));
  PeerTiming t;
  if (parsed.contains("missing")) return t;
  t.version = parsed["version"].get<std::string>();
  t.timing.seconds = parsed["seconds"].get<double>();
  for (size_t i = 0; i < 12; ++i) t.timing.stats[i] = parsed["stats"][i].get<double>();
  return t;
}

// The whole `largedet evaluate` process on the same files (start-up and the statistics' JSON
// included), as a user runs it.
double run_our_process(const std::string& gt_path, const std::string& results_path,
                       const char* type, int threads) {
  const std::string command = "'" + largedet::tools::front_executable().string() +
                              "' evaluate -a '" + gt_path + "' -r '" + results_path + "' -t " +
                              type + " --threads " + std::to_string(threads) + " > /dev/null 2>&1";
  const auto start = BenchClock::now();
  if (std::system(command.c_str()) != 0)
    throw largedet::Error("largedet evaluate failed: " + command, "bench eval");
  return seconds_since(start);
}

std::string default_python() {
  const char* peers = std::getenv("EVAL_PEERS_VENV");
  const std::string venv = peers && *peers ? peers : "/tmp/eval-peers-venv";
  if (::access((venv + "/bin/python").c_str(), X_OK) == 0) return venv + "/bin/python";
  const char* env = std::getenv("LARGEDET_PYTHON");
  return env && *env ? env : ".venv/bin/python";
}

void run_bench_eval(const BenchEvalArgs& args_in) {
  BenchEvalArgs args = args_in;
  if (args.type == "oid") {
    largedet::tools::OidBenchOptions o;
    if (args.images_set) o.images = args.images;
    o.classes = args.classes;
    o.detections = args.detections;
    o.threads = args.threads;
    o.seed = args.seed;
    o.workdir = args.workdir;
    return largedet::tools::bench_eval_openimages(o);
  }
  if (args.python.empty()) args.python = default_python();
  const int threads = args.threads > 0 ? args.threads : largedet::usable_cores();
  ::mkdir(args.workdir.c_str(), 0755);
  const std::string gt_path = args.workdir + "/gt.json";
  const std::string bbox_path = args.workdir + "/dets_bbox.json";
  const std::string segm_path = args.workdir + "/dets_segm.json";
  {
    const auto start = BenchClock::now();
    CocoDataset gt;
    std::vector<Detection> boxes, masks;
    make_synthetic(args, gt, boxes, masks);
    largedet::write_file_atomic(gt_path, gt_to_json(gt));
    save_coco_results(bbox_path, boxes);
    save_coco_results(segm_path, masks);
    std::printf(
        "synthetic set: %d images, %zu objects, %zu detections (%d per image) in %s, %.1f s\n",
        args.images, gt.annotations.size(), boxes.size(), args.detections, args.workdir.c_str(),
        seconds_since(start));
  }
  std::vector<std::string> peers;
  if (!args.skip_python) {
    std::stringstream list(args.peers);
    for (std::string tool; std::getline(list, tool, ',');)
      if (!tool.empty()) peers.push_back(tool);
  }
  std::printf("%-5s %-34s %9s %12s %16s\n", "type", "tool", "time (s)", "vs in-process",
              "max |stat diff|");
  const std::pair<const char*, IouType> types[] = {{"bbox", IouType::kBbox},
                                                   {"segm", IouType::kSegm}};
  for (const auto& [name, type] : types) {
    const std::string& results = name == std::string("bbox") ? bbox_path : segm_path;
    const Timing ours = run_ours(gt_path, results, type, threads);
    std::printf("%-5s %-34s %9.2f %12s %16s\n", name, "largedet (in-process)", ours.seconds,
                "1.00x", "-");
    std::printf("      (%.2f s reading the ground truth, %.2f s the results, %.2f s scoring)\n",
                ours.gt_seconds, ours.results_seconds,
                ours.seconds - ours.gt_seconds - ours.results_seconds);
    const double process = run_our_process(gt_path, results, name, threads);
    std::printf("%-5s %-34s %9.2f %11.2fx %16s\n", name, "largedet evaluate (whole process)",
                process, process / ours.seconds, "-");
    std::fflush(stdout);
    for (const auto& tool : peers) {
      const PeerTiming theirs = run_peer(args, tool, gt_path, results, name);
      if (theirs.version.empty()) {
        std::printf("%-5s %-34s %9s (not installed in %s)\n", name, tool.c_str(), "-",
                    args.python.c_str());
        continue;
      }
      double diff = 0;
      for (size_t i = 0; i < 12; ++i)
        diff = std::max(diff, std::fabs(ours.stats[i] - theirs.timing.stats[i]));
      std::printf("%-5s %-34s %9.2f %11.2fx %16.2e\n", name, (tool + " " + theirs.version).c_str(),
                  theirs.timing.seconds, theirs.timing.seconds / ours.seconds, diff);
      std::fflush(stdout);
    }
  }
  std::printf("largedet used %d threads; peers use what their libraries choose\n", threads);
}

void setup_bench_eval(CLI::App& cmd) {
  auto args = std::make_shared<BenchEvalArgs>();
  cmd.add_option("--type", args->type,
                 "coco: bbox and segm against pycocotools; oid: OpenImages mAP@0.5 with the "
                 "hierarchy, time and peak memory")
      ->check(CLI::IsMember({"coco", "oid"}))
      ->capture_default_str();
  cmd.add_option("--images", args->images, "synthetic images (oid: 41,620 unless given)")
      ->capture_default_str()
      ->each([args](const std::string&) { args->images_set = true; });
  cmd.add_option("--classes", args->classes, "oid: classes")->capture_default_str();
  cmd.add_option("--detections", args->detections, "detections per image")->capture_default_str();
  cmd.add_option("--threads", args->threads, "our threads (default: every usable core)");
  cmd.add_option("--seed", args->seed, "synthetic data seed")->capture_default_str();
  cmd.add_option("--workdir", args->workdir, "where the JSON files go")->capture_default_str();
  cmd.add_option("--python", args->python,
                 "Python with the peers (default: $EVAL_PEERS_VENV/bin/python, made by "
                 "bench/setup_eval_peers.sh, default /tmp/eval-peers-venv; else $LARGEDET_PYTHON "
                 "or .venv/bin/python, which has pycocotools)");
  cmd.add_option("--peers", args->peers, "comma-separated peers to run")->capture_default_str();
  cmd.add_option("--script", args->script, "the peers' side")->capture_default_str();
  cmd.add_flag("--skip-python", args->skip_python, "time ours only");
  cmd.callback([args] { run_bench_eval(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("bench eval",
                          "Time COCO bbox/segm evaluation of 5,000 synthetic images x 100 "
                          "detections: ours (in-process and as a process) against pycocotools, "
                          "faster-coco-eval, ultrafast-pycocotools and hotcoco on the same files",
                          setup_bench_eval);
