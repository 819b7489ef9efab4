#include "eval_test_util.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

namespace largedet::evaluation::testing {
namespace {

double round_to(double x, double step) { return std::round(x / step) * step; }

// A star-shaped polygon around (cx, cy), coordinates rounded to 1/100 pixel like real files.
std::vector<double> random_polygon(std::mt19937& rng, double cx, double cy, double radius) {
  std::uniform_int_distribution<int> vertices(3, 12);
  std::uniform_real_distribution<double> angle(0, 2 * M_PI), scale(0.4, 1.0);
  const int n = vertices(rng);
  std::vector<double> angles(static_cast<size_t>(n));
  for (auto& a : angles) a = angle(rng);
  std::sort(angles.begin(), angles.end());
  std::vector<double> xy;
  for (double a : angles) {
    const double r = radius * scale(rng);
    xy.push_back(round_to(cx + r * std::cos(a), 0.01));
    xy.push_back(round_to(cy + r * std::sin(a), 0.01));
  }
  return xy;
}

std::vector<double> jitter_polygon(std::mt19937& rng, const std::vector<double>& xy,
                                   double amount) {
  std::normal_distribution<double> noise(0, amount);
  const double dx = noise(rng), dy = noise(rng);
  std::vector<double> out = xy;
  for (size_t i = 0; i < out.size(); i += 2) {
    out[i] = round_to(out[i] + dx + noise(rng) * 0.3, 0.01);
    out[i + 1] = round_to(out[i + 1] + dy + noise(rng) * 0.3, 0.01);
  }
  return out;
}

Rle random_blob(std::mt19937& rng, uint32_t h, uint32_t w) {
  std::uniform_real_distribution<double> u(0, 1);
  const double cx = u(rng) * w, cy = u(rng) * h;
  const double rx = 3 + u(rng) * w / 3, ry = 3 + u(rng) * h / 3;
  std::vector<uint8_t> mask(static_cast<size_t>(h) * w);
  for (uint32_t x = 0; x < w; ++x) {
    for (uint32_t y = 0; y < h; ++y) {
      const double a = (x - cx) / rx, b = (y - cy) / ry;
      mask[size_t(x) * h + y] = a * a + b * b < 1 && u(rng) > 0.05;
    }
  }
  return rle_encode(mask.data(), h, w);
}

Detection make_detection(int64_t image_id, int64_t category_id, double score,
                         const std::vector<double>& polygon, uint32_t h, uint32_t w, bool mask) {
  Detection det;
  det.image_id = image_id;
  det.category_id = category_id;
  det.score = score;
  Rle rle = rle_from_polygon(polygon, h, w);
  if (mask) {
    det.segmentation.kind = Segmentation::Kind::kCompressedRle;
    det.segmentation.rle = Rle{h, w, {}};
    det.segmentation.compressed = rle_to_string(rle);
  } else {
    // A box around the polygon, unrounded so that IoUs are not all tidy fractions.
    double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
    for (size_t i = 0; i < polygon.size(); i += 2) {
      x0 = std::min(x0, polygon[i]);
      x1 = std::max(x1, polygon[i]);
      y0 = std::min(y0, polygon[i + 1]);
      y1 = std::max(y1, polygon[i + 1]);
    }
    det.has_bbox = true;
    det.bbox = {x0, y0, x1 - x0, y1 - y0};
  }
  return det;
}

}  // namespace

RandomCase make_random_case(uint32_t seed, int num_images) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  RandomCase c;
  const int64_t category_ids[] = {2, 5, 11, 40, 77};
  for (int64_t id : category_ids) c.gt.categories.push_back({id, "cat" + std::to_string(id), ""});
  auto random_category = [&] { return category_ids[rng() % 5]; };
  auto random_score = [&] { return round_to(u(rng), 0.05); };  // coarse: many ties
  int64_t ann_id = 1;
  for (int i = 0; i < num_images; ++i) {
    CocoImage img;
    img.id = 100 + int64_t(rng() % 7) + 8 * i;  // not contiguous (file order shuffled below)
    img.width = 40 + int32_t(rng() % 300);
    img.height = 40 + int32_t(rng() % 300);
    img.file_name = std::to_string(img.id) + ".jpg";
    const uint32_t h = uint32_t(img.height), w = uint32_t(img.width);
    c.gt.images.push_back(img);
    const int num_objects = u(rng) < 0.15 ? 0 : int(rng() % 8);
    for (int o = 0; o < num_objects; ++o) {
      CocoAnnotation ann;
      ann.id = ann_id++;
      ann.image_id = img.id;
      ann.category_id = random_category();
      Rle rle;
      std::vector<double> polygon;
      if (u(rng) < 0.1) {
        ann.iscrowd = true;
        rle = random_blob(rng, h, w);
        ann.segmentation.kind = Segmentation::Kind::kRle;
        ann.segmentation.rle = rle;
      } else {
        // Radii spread over small (< 32^2), medium and large areas; some cross the border.
        const double radius = 2 + std::pow(u(rng), 2) * 0.6 * std::min(h, w);
        polygon = random_polygon(rng, u(rng) * w, u(rng) * h, radius);
        ann.segmentation.kind = Segmentation::Kind::kPolygons;
        ann.segmentation.polygons.push_back(polygon);
        if (u(rng) < 0.15) {
          ann.segmentation.polygons.push_back(
              random_polygon(rng, u(rng) * w, u(rng) * h, 2 + u(rng) * 20));
        }
        rle = segmentation_to_rle(ann.segmentation, h, w);
      }
      ann.area = double(rle_area(rle));
      ann.bbox = rle_to_bbox(rle);
      ann.has_bbox = true;
      c.gt.annotations.push_back(ann);
      if (polygon.empty()) continue;
      // Detections of this object: jittered copies, duplicates, a wrong class now and then.
      const int copies = int(rng() % 3) + (u(rng) < 0.8);
      for (int k = 0; k < copies; ++k) {
        const double amount = u(rng) < 0.6 ? 0.3 : 2.0;
        auto jittered = jitter_polygon(rng, polygon, amount);
        const int64_t category = u(rng) < 0.15 ? random_category() : ann.category_id;
        const double score = random_score();
        c.bbox_results.push_back(make_detection(img.id, category, score, jittered, h, w, false));
        c.segm_results.push_back(make_detection(img.id, category, score, jittered, h, w, true));
      }
    }
    // Background false positives; one image in seven gets more than 100 detections.
    const int background = u(rng) < 1.0 / 7 ? 101 + int(rng() % 30) : int(rng() % 4);
    for (int k = 0; k < background; ++k) {
      auto polygon = random_polygon(rng, u(rng) * w, u(rng) * h, 2 + u(rng) * 40);
      const int64_t category = random_category();
      const double score = random_score();
      c.bbox_results.push_back(make_detection(img.id, category, score, polygon, h, w, false));
      c.segm_results.push_back(make_detection(img.id, category, score, polygon, h, w, true));
    }
  }
  // The evaluator must sort images by id itself, and keep file order only within ties.
  std::shuffle(c.gt.images.begin(), c.gt.images.end(), rng);
  std::shuffle(c.gt.annotations.begin(), c.gt.annotations.end(), rng);
  std::shuffle(c.bbox_results.begin(), c.bbox_results.end(), rng);
  std::shuffle(c.segm_results.begin(), c.segm_results.end(), rng);
  c.gt.build_index();
  return c;
}

std::string coco_dataset_to_json(const CocoDataset& d) {
  using nlohmann::json;
  json root;
  root["images"] = json::array();
  for (const auto& img : d.images) {
    root["images"].push_back({{"id", img.id},
                              {"file_name", img.file_name},
                              {"width", img.width},
                              {"height", img.height}});
  }
  root["categories"] = json::array();
  for (const auto& c : d.categories) root["categories"].push_back({{"id", c.id}, {"name", c.name}});
  root["annotations"] = json::array();
  for (const auto& a : d.annotations) {
    json ann = {{"id", a.id},     {"image_id", a.image_id},       {"category_id", a.category_id},
                {"area", a.area}, {"iscrowd", a.iscrowd ? 1 : 0}, {"bbox", a.bbox}};
    const Segmentation& s = a.segmentation;
    if (s.kind == Segmentation::Kind::kPolygons) {
      ann["segmentation"] = s.polygons;
    } else if (s.kind == Segmentation::Kind::kRle) {
      ann["segmentation"] = {{"size", {s.rle.h, s.rle.w}}, {"counts", s.rle.counts}};
    } else if (s.kind == Segmentation::Kind::kCompressedRle) {
      ann["segmentation"] = {{"size", {s.rle.h, s.rle.w}}, {"counts", s.compressed}};
    }
    root["annotations"].push_back(ann);
  }
  return root.dump();
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/largedet_eval_XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

void remove_temp_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string coco_vectors_dir() {
  return std::string(LARGEDET_SOURCE_DIR) + "/tests/evaluation/data/coco_eval";
}

uint32_t run_seed() {
  if (const char* pinned = std::getenv("LARGEDET_TEST_SEED")) return uint32_t(std::stoul(pinned));
  return uint32_t(std::chrono::steady_clock::now().time_since_epoch().count());
}

CliRun run_cli(const std::string& arguments) {
  CliRun run;
  const std::string command = std::string("'") + LARGEDET_CLI + "' " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

bool cli_built() {
  struct stat st;
  return ::stat(LARGEDET_CLI, &st) == 0;
}

}  // namespace largedet::evaluation::testing
