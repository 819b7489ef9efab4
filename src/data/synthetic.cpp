#include "largedet/data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/data/image.h"
#include "largedet/data/seed.h"

namespace largedet::data {
namespace {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return state_ = mix_seed(state_, 0x5EED); }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int lo, int hi) { return lo + static_cast<int>(next() % (hi - lo + 1)); }

 private:
  uint64_t state_;
};

constexpr double kPi = 3.14159265358979323846;

// Category 1 circle (a 32-gon), 2 rectangle (2 : 1.2), 3 triangle, 4 hexagon; rotated by angle.
std::vector<double> shape_polygon(int category, double cx, double cy, double r, double angle) {
  std::vector<std::pair<double, double>> points;
  if (category == 2) {
    points = {{-r, -0.6 * r}, {r, -0.6 * r}, {r, 0.6 * r}, {-r, 0.6 * r}};
  } else {
    const int sides = category == 1 ? 32 : category == 3 ? 3 : 6;
    for (int k = 0; k < sides; ++k) {
      points.emplace_back(r * std::cos(2 * kPi * k / sides), r * std::sin(2 * kPi * k / sides));
    }
  }
  const double c = std::cos(angle), s = std::sin(angle);
  std::vector<double> xy;
  for (const auto& [x, y] : points) {
    // Two decimals: the JSON holds exactly what is drawn.
    xy.push_back(std::round((cx + x * c - y * s) * 100) / 100);
    xy.push_back(std::round((cy + x * s + y * c) * 100) / 100);
  }
  return xy;
}

bool inside(const std::vector<double>& xy, double px, double py) {
  bool in = false;
  const size_t n = xy.size() / 2;
  for (size_t i = 0, j = n - 1; i < n; j = i++) {
    const double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
    if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

void fill(Image& image, const std::vector<double>& xy, const uint8_t color[3]) {
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
  for (size_t i = 0; i < xy.size(); i += 2) {
    x0 = std::min(x0, xy[i]);
    x1 = std::max(x1, xy[i]);
    y0 = std::min(y0, xy[i + 1]);
    y1 = std::max(y1, xy[i + 1]);
  }
  const int ya = std::max(0, static_cast<int>(y0)), yb = std::min(image.height - 1, int(y1) + 1);
  const int xa = std::max(0, static_cast<int>(x0)), xb = std::min(image.width - 1, int(x1) + 1);
  for (int y = ya; y <= yb; ++y) {
    for (int x = xa; x <= xb; ++x) {
      if (!inside(xy, x + 0.5, y + 0.5)) continue;
      uint8_t* p = image.rgb.data() + (static_cast<size_t>(y) * image.width + x) * 3;
      p[0] = color[0];
      p[1] = color[1];
      p[2] = color[2];
    }
  }
}

// Stripes at a random angle and frequency between two colours, plus per-pixel noise.
void background(Image& image, Rng& rng) {
  uint8_t a[3], b[3];
  for (int c = 0; c < 3; ++c) {
    a[c] = static_cast<uint8_t>(rng.integer(0, 255));
    b[c] = static_cast<uint8_t>(rng.integer(0, 255));
  }
  const double angle = rng.uniform(0, kPi), freq = rng.uniform(0.02, 0.2);
  const double fx = std::cos(angle) * freq, fy = std::sin(angle) * freq;
  const uint64_t noise_seed = rng.next();
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double t = 0.5 + 0.5 * std::sin(x * fx + y * fy);
      const uint64_t h = mix_seed(noise_seed, static_cast<uint64_t>(y) * image.width + x);
      const int noise = static_cast<int>(h % 31) - 15;
      uint8_t* p = image.rgb.data() + (static_cast<size_t>(y) * image.width + x) * 3;
      for (int c = 0; c < 3; ++c) {
        const int v = static_cast<int>(a[c] * t + b[c] * (1 - t)) + noise;
        p[c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
      }
    }
  }
}

std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f", v);
  return buffer;
}

struct Split {
  std::string images, annotations;
  int count = 0;
};

}  // namespace

SynthResult write_synthetic_coco(const SynthOptions& o) {
  LARGEDET_CHECK(o.images >= 1, "synth: --images must be >= 1");
  LARGEDET_CHECK(o.size >= 32 && o.size <= 8192, "synth: --size must be in 32..8192");
  LARGEDET_CHECK(o.max_objects >= 1, "synth: max_objects must be >= 1");
  LARGEDET_CHECK(!o.out_dir.empty(), "synth: --out is required");
  namespace fs = std::filesystem;
  SynthResult result;
  result.train_dir = (fs::path(o.out_dir) / "train").string();
  result.val_dir = (fs::path(o.out_dir) / "val").string();
  const std::string ann_dir = (fs::path(o.out_dir) / "annotations").string();
  for (const auto& d : {result.train_dir, result.val_dir, ann_dir}) fs::create_directories(d);
  result.train_json = ann_dir + "/instances_train.json";
  result.val_json = ann_dir + "/instances_val.json";

  int num_val =
      o.images >= 2 ? std::max(1, static_cast<int>(std::lround(o.images * o.val_fraction))) : 0;
  num_val = std::min(num_val, o.images - 1);
  Split splits[2];
  Rng rng(mix_seed(o.seed, 0xDA7A));
  int64_t annotation_id = 0;
  for (int i = 0; i < o.images; ++i) {
    const bool val = i >= o.images - num_val;
    Split& split = splits[val];
    const int64_t image_id = i + 1;
    const bool portrait = rng.uniform() < o.portrait_fraction;
    const int long_side = o.size, short_side = std::max(1, o.size * 3 / 4);
    Image image;
    image.width = portrait ? short_side : long_side;
    image.height = portrait ? long_side : short_side;
    image.rgb.assign(image.pixels() * 3, 0);
    background(image, rng);
    char name[32];
    std::snprintf(name, sizeof(name), "%06lld.jpg", static_cast<long long>(image_id));
    const int objects = rng.integer(1, o.max_objects);
    const double m = std::min(image.width, image.height);
    for (int k = 0; k < objects; ++k) {
      const int category = rng.integer(1, 4);
      const double r = rng.uniform(0.06, 0.25) * m;
      // Rectangle corners lie 1.17 r from the centre: keep every vertex inside the image.
      const double reach = category == 2 ? 1.17 * r : r;
      const double cx = rng.uniform(reach, image.width - reach);
      const double cy = rng.uniform(reach, image.height - reach);
      const double angle = rng.uniform(0, 2 * kPi);
      uint8_t color[3];
      for (auto& c : color) c = static_cast<uint8_t>(rng.integer(0, 255));
      const auto xy = shape_polygon(category, cx, cy, r, angle);
      fill(image, xy, color);
      double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9, area = 0;
      const size_t n = xy.size() / 2;
      for (size_t p = 0; p < n; ++p) {
        x0 = std::min(x0, xy[2 * p]);
        x1 = std::max(x1, xy[2 * p]);
        y0 = std::min(y0, xy[2 * p + 1]);
        y1 = std::max(y1, xy[2 * p + 1]);
        const size_t q = (p + 1) % n;
        area += xy[2 * p] * xy[2 * q + 1] - xy[2 * q] * xy[2 * p + 1];
      }
      x0 = std::max(0.0, x0);
      y0 = std::max(0.0, y0);
      x1 = std::min<double>(image.width, x1);
      y1 = std::min<double>(image.height, y1);
      std::string seg;
      for (size_t p = 0; p < xy.size(); ++p) seg += (p ? "," : "") + number(xy[p]);
      if (!split.annotations.empty()) split.annotations += ",\n";
      split.annotations += "{\"id\":" + std::to_string(++annotation_id) +
                           ",\"image_id\":" + std::to_string(image_id) +
                           ",\"category_id\":" + std::to_string(category) + ",\"bbox\":[" +
                           number(x0) + "," + number(y0) + "," + number(x1 - x0) + "," +
                           number(y1 - y0) + "],\"area\":" + number(std::abs(area) / 2) +
                           ",\"iscrowd\":0,\"segmentation\":[[" + seg + "]]}";
      ++result.annotations;
    }
    write_file_atomic((fs::path(val ? result.val_dir : result.train_dir) / name).string(),
                      encode_jpeg(image, o.quality));
    if (!split.images.empty()) split.images += ",\n";
    split.images += "{\"id\":" + std::to_string(image_id) + ",\"file_name\":\"" + name +
                    "\",\"width\":" + std::to_string(image.width) +
                    ",\"height\":" + std::to_string(image.height) + "}";
    ++split.count;
  }
  std::string categories;
  for (int c = 0; c < 4; ++c) {
    categories += std::string(c ? ",\n" : "") + "{\"id\":" + std::to_string(c + 1) +
                  ",\"name\":\"" + kSynthClasses[c] + "\",\"supercategory\":\"shape\"}";
  }
  for (int s = 0; s < 2; ++s) {
    const std::string json = "{\"info\":{\"description\":\"LargeDet synthetic shapes\",\"seed\":" +
                             std::to_string(o.seed) + "},\n\"images\":[\n" + splits[s].images +
                             "],\n\"annotations\":[\n" + splits[s].annotations +
                             "],\n\"categories\":[\n" + categories + "]}\n";
    write_file_atomic(s ? result.val_json : result.train_json, json);
  }
  result.train_images = splits[0].count;
  result.val_images = splits[1].count;
  return result;
}

}  // namespace largedet::data
