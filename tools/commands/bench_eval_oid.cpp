// The synthetic set looks like the challenge's validation split: 500 classes under 50 parents
// (a few classes under two), ~7 boxes per image of which 10 % group-of, every box class verified
// present and ~5 classes verified absent per image, and detections that are jittered copies of
// the boxes, wrong classes and background boxes. The evaluation (reading the CSVs, expanding them
// along the hierarchy, scoring) runs in a child process so that its peak RSS is its own.
#include "bench_eval_oid.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/evaluation/openimages_eval.h"
#include "stopwatch.h"

namespace largedet::tools {
namespace {

constexpr int kParents = 50;

std::string mid(int k) { return "/m/bench" + std::to_string(k); }

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6f", v);
  return buffer;
}

struct Files {
  std::string boxes, labels, hierarchy, detections;
  size_t num_boxes = 0, num_labels = 0, num_detections = 0;
};

// Children are classes kParents..classes-1; child c sits under parent c % kParents, and every
// 37th also under the next parent.
std::string hierarchy_json(int classes) {
  std::vector<std::vector<int>> children(kParents);
  for (int c = kParents; c < classes; ++c) {
    children[size_t(c % kParents)].push_back(c);
    if (c % 37 == 0) children[size_t((c + 1) % kParents)].push_back(c);
  }
  std::string json = "{\"LabelName\": \"/m/0bl9f\", \"Subcategory\": [";
  for (int p = 0; p < kParents; ++p) {
    json += (p ? ", " : "") + std::string("{\"LabelName\": \"") + mid(p) + "\"";
    if (!children[size_t(p)].empty()) {
      json += ", \"Subcategory\": [";
      for (size_t i = 0; i < children[size_t(p)].size(); ++i)
        json += (i ? ", " : "") + std::string("{\"LabelName\": \"") + mid(children[size_t(p)][i]) +
                "\"}";
      json += "]";
    }
    json += "}";
  }
  return json + "]}\n";
}

Files make_synthetic(const OidBenchOptions& o) {
  LARGEDET_CHECK(o.classes > kParents, "bench eval --type oid needs more than ", kParents,
                 " classes");
  std::mt19937 rng(o.seed);
  std::uniform_real_distribution<double> u(0, 1);
  auto leaf = [&] { return kParents + int(rng() % uint32_t(o.classes - kParents)); };
  std::string boxes =
      "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,"
      "IsDepiction,IsInside\n";
  std::string labels = "ImageID,Source,LabelName,Confidence\n";
  std::string dets = "ImageID,LabelName,Score,XMin,YMin,XMax,YMax\n";
  Files f;
  for (int i = 0; i < o.images; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "%016x", unsigned(i) * 2654435761u);
    struct Object {
      int label;
      double x0, y0, x1, y1;
    };
    std::vector<Object> objects;
    std::set<int> present;
    const int num_objects = 1 + int(rng() % 13);
    for (int k = 0; k < num_objects; ++k) {
      const double w = 0.02 + 0.6 * u(rng) * u(rng), h = 0.02 + 0.6 * u(rng) * u(rng);
      const double x0 = u(rng) * (1 - w), y0 = u(rng) * (1 - h);
      objects.push_back({leaf(), x0, y0, x0 + w, y0 + h});
      const Object& b = objects.back();
      present.insert(b.label);
      boxes += std::string(id) + ",xclick," + mid(b.label) + ",1," + number(b.x0) + "," +
               number(b.x1) + "," + number(b.y0) + "," + number(b.y1) + ",0,0," +
               (u(rng) < 0.1 ? "1" : "0") + ",0,0\n";
      ++f.num_boxes;
    }
    for (int label : present) {
      labels += std::string(id) + ",verification," + mid(label) + ",1\n";
      ++f.num_labels;
    }
    for (int k = 0; k < 5; ++k) {
      const int label = leaf();
      if (present.count(label)) continue;
      labels += std::string(id) + ",verification," + mid(label) + ",0\n";
      ++f.num_labels;
    }
    for (int d = 0; d < o.detections; ++d) {
      Object det;
      if (d < 3 * num_objects && u(rng) < 0.8) {
        det = objects[size_t(d) % objects.size()];
        if (u(rng) < 0.1) det.label = int(rng() % uint32_t(o.classes));
        std::normal_distribution<double> noise(0, 0.01 + 0.03 * u(rng));
        det.x0 = std::clamp(det.x0 + noise(rng), 0.0, 1.0);
        det.y0 = std::clamp(det.y0 + noise(rng), 0.0, 1.0);
        det.x1 = std::clamp(det.x1 + noise(rng), det.x0, 1.0);
        det.y1 = std::clamp(det.y1 + noise(rng), det.y0, 1.0);
      } else {
        const double w = 0.02 + 0.4 * u(rng), h = 0.02 + 0.4 * u(rng);
        det = {int(rng() % uint32_t(o.classes)), u(rng) * (1 - w), u(rng) * (1 - h), 0, 0};
        det.x1 = det.x0 + w, det.y1 = det.y0 + h;
      }
      dets += std::string(id) + "," + mid(det.label) + "," + number(u(rng)) + "," + number(det.x0) +
              "," + number(det.y0) + "," + number(det.x1) + "," + number(det.y1) + "\n";
      ++f.num_detections;
    }
  }
  f.boxes = o.workdir + "/boxes.csv";
  f.labels = o.workdir + "/image_labels.csv";
  f.hierarchy = o.workdir + "/hierarchy.json";
  f.detections = o.workdir + "/detections.csv";
  write_file_atomic(f.boxes, boxes);
  write_file_atomic(f.labels, labels);
  write_file_atomic(f.hierarchy, hierarchy_json(o.classes));
  write_file_atomic(f.detections, dets);
  return f;
}

// Resident memory now, in MB: the process the evaluating child is forked from.
double resident_mb() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return double(resident) * double(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

struct ChildReport {
  double read_seconds = NAN, evaluate_seconds = NAN, map = NAN;
  size_t expanded_boxes = 0, expanded_labels = 0, classes = 0;
};

}  // namespace

void bench_eval_openimages(const OidBenchOptions& o) {
  ::mkdir(o.workdir.c_str(), 0755);
  const auto start = BenchClock::now();
  const Files f = make_synthetic(o);
  std::printf(
      "synthetic set: %d images, %d classes, %zu boxes, %zu image-level labels, %zu detections "
      "(%d per image) in %s, %.1f s\n",
      o.images, o.classes, f.num_boxes, f.num_labels, f.num_detections, o.detections,
      o.workdir.c_str(), seconds_since(start));
  std::fflush(stdout);

  const double base_mb = resident_mb();
  int fds[2];
  LARGEDET_CHECK(::pipe(fds) == 0, "bench eval: cannot create a pipe");
  const pid_t pid = ::fork();
  LARGEDET_CHECK(pid >= 0, "bench eval: cannot fork");
  if (pid == 0) {
    ::close(fds[0]);
    ChildReport r;
    try {
      auto t = BenchClock::now();
      const auto gt = evaluation::load_oid_ground_truth(f.boxes, f.labels, f.hierarchy);
      const auto detections = evaluation::load_oid_detections_csv(f.detections);
      r.read_seconds = seconds_since(t);
      t = BenchClock::now();
      evaluation::OidEvalParams params;
      params.threads = o.threads;
      const auto result =
          evaluation::evaluate_openimages(gt.boxes, gt.image_labels, detections, params);
      r.evaluate_seconds = seconds_since(t);
      r.map = result.map;
      r.expanded_boxes = gt.boxes.size();
      r.expanded_labels = gt.image_labels.size();
      r.classes = result.per_class.size();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench eval --type oid: %s\n", e.what());
      ::_exit(1);
    }
    const ssize_t written = ::write(fds[1], &r, sizeof r);
    ::_exit(written == ssize_t(sizeof r) ? 0 : 1);
  }
  ::close(fds[1]);
  ChildReport r;
  const ssize_t got = ::read(fds[0], &r, sizeof r);
  ::close(fds[0]);
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  if (got != ssize_t(sizeof r) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("the evaluation child failed", "bench eval --type oid");
  std::printf(
      "expanded along the hierarchy: %zu boxes, %zu image-level labels; %zu classes scored\n",
      r.expanded_boxes, r.expanded_labels, r.classes);
  std::printf(
      "read + expand %.2f s, evaluate %.2f s, total %.2f s, peak RSS %.0f MB (forked from a "
      "process of %.0f MB resident), mAP@0.5 %.10f\n",
      r.read_seconds, r.evaluate_seconds, r.read_seconds + r.evaluate_seconds,
      double(usage.ru_maxrss) / 1024.0, base_mb, r.map);
}

}  // namespace largedet::tools
