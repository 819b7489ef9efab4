#include "largedet/data/synthetic_classify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/data/image.h"
#include "largedet/data/seed.h"
#include "synth_draw.h"

namespace largedet::data {
namespace {

using synth::kPi;
using synth::Points;
using synth::Rng;

const char* const kGlyphs[] = {"crescent", "chevron", "tee", "clover"};
const char* const kPatterns[] = {"stripes", "checks", "dots", "rings"};

// A glyph's outline around (0, 0), within radius r.
Points glyph_points(int glyph, double r) {
  Points points;
  auto unit = [&](std::initializer_list<std::pair<double, double>> xy) {
    for (const auto& [x, y] : xy) points.emplace_back(0.9 * r * x, 0.9 * r * y);
  };
  switch (glyph) {
    case 0: {  // the disc of radius r less a disc of radius 0.8 r moved by 0.45 r
      const double d = 0.45, ri = 0.8;
      const double ix = (1 - ri * ri + d * d) / (2 * d), iy = std::sqrt(1 - ix * ix);
      const double alpha = std::atan2(iy, ix), beta = std::atan2(iy, ix - d);
      for (int k = 0; k <= 24; ++k) {
        const double t = alpha + (2 * kPi - 2 * alpha) * k / 24;
        points.emplace_back(r * std::cos(t), r * std::sin(t));
      }
      for (int k = 1; k < 24; ++k) {
        const double t = (2 * kPi - beta) - (2 * kPi - 2 * beta) * k / 24;
        points.emplace_back(r * (d + ri * std::cos(t)), r * ri * std::sin(t));
      }
      break;
    }
    case 1:
      unit({{-0.7, -0.75}, {-0.2, -0.75}, {0.7, 0}, {-0.2, 0.75}, {-0.7, 0.75}, {0.2, 0}});
      break;
    case 2:
      unit({{-0.75, -0.75},
            {0.75, -0.75},
            {0.75, -0.35},
            {0.2, -0.35},
            {0.2, 0.95},
            {-0.2, 0.95},
            {-0.2, -0.35},
            {-0.75, -0.35}});
      break;
    default:  // a three-leaved clover: r (0.55 + 0.45 cos 3t)
      for (int k = 0; k < 48; ++k) {
        const double t = 2 * kPi * k / 48, rk = r * (0.55 + 0.45 * std::cos(3 * t));
        points.emplace_back(rk * std::cos(t), rk * std::sin(t));
      }
  }
  return points;
}

void render(Image& image, int label, const SynthClassifyOptions& o, Rng& rng) {
  const double s = image.width;
  synth::background(image, rng);
  const int clutter = o.clutter > 0 ? rng.integer(0, o.clutter) : 0;
  for (int k = 0; k < clutter; ++k)
    synth::clutter_item(image, rng, rng.uniform(0.1, 0.35) * s, /*patches=*/false);

  const int glyph = label / 4, pattern = label % 4;
  const double r = rng.uniform(0.28, 0.46) * s;
  const Points points = glyph_points(glyph, r);
  const double extent = std::min(synth::reach_of(points), s / 2);
  const double cx = rng.uniform(extent, s - extent), cy = rng.uniform(extent, s - extent);
  const double angle = rng.uniform(0, 2 * kPi);
  uint8_t a[3], b[3];
  synth::random_color(rng, a);
  for (int tries = 0; tries < 16; ++tries) {  // two colours far enough apart to see the pattern
    synth::random_color(rng, b);
    if (std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]) >= 200) break;
  }
  const double period = r * rng.uniform(0.22, 0.38), theta = rng.uniform(0, kPi);
  const double c = std::cos(theta), sn = std::sin(theta);
  synth::fill_with(image, synth::place(points, cx, cy, angle), [&](int x, int y, uint8_t* p) {
    const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
    const double u = (dx * c + dy * sn) / period, v = (-dx * sn + dy * c) / period;
    bool first = false;
    switch (pattern) {
      case 0:
        first = static_cast<int64_t>(std::floor(u)) & 1;
        break;
      case 1:
        first = (static_cast<int64_t>(std::floor(u)) + static_cast<int64_t>(std::floor(v))) & 1;
        break;
      case 2: {
        const double fu = u - std::round(u), fv = v - std::round(v);
        first = fu * fu + fv * fv < 0.34 * 0.34;
        break;
      }
      default:
        first = static_cast<int64_t>(std::floor(std::hypot(dx, dy) / period)) & 1;
    }
    const uint8_t* col = first ? a : b;
    p[0] = col[0];
    p[1] = col[1];
    p[2] = col[2];
  });
}

}  // namespace

std::string synthetic_classify_class_name(int c) {
  LARGEDET_CHECK(c >= 0 && c < kSynthClassifyMaxClasses, "synth: class ", c, " outside 0..",
                 kSynthClassifyMaxClasses - 1);
  return std::string(kGlyphs[c / 4]) + "_" + kPatterns[c % 4];
}

SynthClassifyResult write_synthetic_classification(const SynthClassifyOptions& o) {
  LARGEDET_CHECK(!o.out_dir.empty(), "synth: --out is required");
  LARGEDET_CHECK(o.classes >= 2 && o.classes <= kSynthClassifyMaxClasses,
                 "synth --task classify: --classes is ", o.classes, "; use 2..",
                 kSynthClassifyMaxClasses);
  LARGEDET_CHECK(o.size >= 16 && o.size <= 1024, "synth --task classify: --size is ", o.size,
                 "; use 16..1024");
  LARGEDET_CHECK(o.val_fraction >= 0 && o.val_fraction < 1,
                 "synth: --val-fraction must be in [0, 1)");
  LARGEDET_CHECK(o.clutter >= 0, "synth: --clutter must be >= 0");
  const int val_per_class =
      std::max(1, static_cast<int>(std::lround(o.images * o.val_fraction / o.classes)));
  const int num_val = val_per_class * o.classes, num_train = o.images - num_val;
  if (num_train < o.classes)
    throw Error("synth --task classify: " + std::to_string(o.images) + " images leave " +
                    std::to_string(num_train) + " for training after " + std::to_string(num_val) +
                    " validation images, fewer than the " + std::to_string(o.classes) + " classes",
                "--images", "use at least " + std::to_string(2 * o.classes) + " images");
  namespace fs = std::filesystem;
  SynthClassifyResult result;
  result.train_dir = (fs::path(o.out_dir) / "train").string();
  result.val_dir = (fs::path(o.out_dir) / "val").string();
  for (int c = 0; c < o.classes; ++c) {
    result.classes.push_back(synthetic_classify_class_name(c));
    for (const auto& d : {result.train_dir, result.val_dir})
      fs::create_directories(fs::path(d) / result.classes.back());
  }
  const std::vector<std::string> names = result.classes;
  std::sort(result.classes.begin(), result.classes.end());
  const uint64_t base = mix_seed(o.seed, 0xC1A55);
  for (int i = 0; i < o.images; ++i) {
    if (o.on_progress) o.on_progress(i, o.images);
    const bool val = i >= num_train;
    const int label = (val ? i - num_train : i) % o.classes;
    Rng rng(mix_seed(base, static_cast<uint64_t>(i)));
    Image image;
    image.width = image.height = o.size;
    image.rgb.assign(image.pixels() * 3, 0);
    render(image, label, o, rng);
    char name[32];
    std::snprintf(name, sizeof(name), "%06d.jpg", i + 1);
    const fs::path dir = fs::path(val ? result.val_dir : result.train_dir) / names[label];
    write_file_atomic((dir / name).string(), encode_jpeg(image, o.quality));
    ++(val ? result.val_images : result.train_images);
  }
  if (o.on_progress) o.on_progress(o.images, o.images);
  return result;
}

}  // namespace largedet::data
