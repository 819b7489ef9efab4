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
#include "synth_draw.h"

namespace largedet::data {
namespace {

using synth::kPi;
using synth::number;
using synth::Points;
using synth::Rng;

Points regular(int sides, double rx, double ry) {
  Points points;
  for (int k = 0; k < sides; ++k)
    points.emplace_back(rx * std::cos(2 * kPi * k / sides), ry * std::sin(2 * kPi * k / sides));
  return points;
}

Points scaled(const Points& unit, double r) {
  Points points;
  for (const auto& [x, y] : unit) points.emplace_back(x * r, y * r);
  return points;
}

// The outline of a category around (0, 0), built on a circle of radius r: 1 circle (a 32-gon),
// 2 rectangle (2 : 1.2), 3 triangle, 4 hexagon, 5 five-pointed star, 6 ellipse (1 : 0.5), 7 cross,
// 8 ring (annulus of inner radius 0.55 r: one outline with a zero-width slit, which the even-odd
// rule of the drawing, pycocotools and our rasteriser turn into a hole), 9 L-shape, 10 arrow.
Points shape_points(int category, double r) {
  switch (category) {
    case 1:
      return regular(32, r, r);
    case 2:
      return {{-r, -0.6 * r}, {r, -0.6 * r}, {r, 0.6 * r}, {-r, 0.6 * r}};
    case 3:
      return regular(3, r, r);
    case 4:
      return regular(6, r, r);
    case 5: {
      Points points;
      for (int k = 0; k < 10; ++k) {
        const double rk = k % 2 ? 0.42 * r : r, a = 2 * kPi * k / 10 - kPi / 2;
        points.emplace_back(rk * std::cos(a), rk * std::sin(a));
      }
      return points;
    }
    case 6:
      return regular(32, r, 0.5 * r);
    case 7:
      return scaled({{-0.3, -1},
                     {0.3, -1},
                     {0.3, -0.3},
                     {1, -0.3},
                     {1, 0.3},
                     {0.3, 0.3},
                     {0.3, 1},
                     {-0.3, 1},
                     {-0.3, 0.3},
                     {-1, 0.3},
                     {-1, -0.3},
                     {-0.3, -0.3}},
                    r);
    case 8: {
      Points points;
      for (int k = 0; k <= 32; ++k)
        points.emplace_back(r * std::cos(2 * kPi * k / 32), r * std::sin(2 * kPi * k / 32));
      for (int k = 32; k >= 0; --k)
        points.emplace_back(0.55 * r * std::cos(2 * kPi * k / 32),
                            0.55 * r * std::sin(2 * kPi * k / 32));
      return points;
    }
    case 9:
      return scaled({{-0.6, -0.8}, {-0.1, -0.8}, {-0.1, 0.3}, {0.6, 0.3}, {0.6, 0.8}, {-0.6, 0.8}},
                    r);
    default:
      return scaled(
          {{-1, -0.15}, {0.2, -0.15}, {0.2, -0.5}, {1, 0}, {0.2, 0.5}, {0.2, 0.15}, {-1, 0.15}}, r);
  }
}

// How far from the centre the outline reaches (what keeps it inside the image). The first four
// keep the values the generator always used, so their datasets keep their bytes.
double reach(int category, double r, const Points& points) {
  if (category == 2) return 1.17 * r;  // the rectangle's corners lie 1.166 r out
  if (category <= 4) return r;
  return synth::reach_of(points);
}

struct Split {
  std::string images, annotations;
  int count = 0;
};

struct Object {
  int category = 0;
  std::vector<double> xy;
  int64_t pixels = 0;
};

}  // namespace

SynthResult write_synthetic_coco(const SynthOptions& o) {
  LARGEDET_CHECK(o.images >= 1, "synth: --images must be >= 1");
  LARGEDET_CHECK(o.size >= 32 && o.size <= 8192, "synth: --size must be in 32..8192");
  LARGEDET_CHECK(o.max_objects >= 1, "synth: max_objects must be >= 1");
  LARGEDET_CHECK(!o.out_dir.empty(), "synth: --out is required");
  LARGEDET_CHECK(o.classes >= 1 && o.classes <= kSynthMaxClasses, "synth: --classes is ", o.classes,
                 "; use 1..", kSynthMaxClasses);
  LARGEDET_CHECK(o.clutter >= 0, "synth: --clutter must be >= 0");
  LARGEDET_CHECK(o.min_scale > 0 && o.min_scale <= o.max_scale && o.max_scale <= 0.85,
                 "synth: object scales need 0 < --min-scale <= --max-scale <= 0.85 (got ",
                 o.min_scale, " and ", o.max_scale, "): larger shapes do not fit in the image");
  LARGEDET_CHECK(o.min_visible >= 0 && o.min_visible < 1, "synth: --min-visible is ", o.min_visible,
                 "; use a fraction in [0, 1)");
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
  // Half the object size is the radius of the circle its outline is built on.
  const double r_lo = o.min_scale / 2, r_hi = o.max_scale / 2;
  const bool track = o.min_visible > 0;
  int64_t annotation_id = 0;
  for (int i = 0; i < o.images; ++i) {
    if (o.on_progress) o.on_progress(i, o.images);
    const bool val = i >= o.images - num_val;
    Split& split = splits[val];
    const int64_t image_id = i + 1;
    const bool portrait = rng.uniform() < o.portrait_fraction;
    const int long_side = o.size, short_side = std::max(1, o.size * 3 / 4);
    Image image;
    image.width = portrait ? short_side : long_side;
    image.height = portrait ? long_side : short_side;
    image.rgb.assign(image.pixels() * 3, 0);
    synth::background(image, rng);
    char name[32];
    std::snprintf(name, sizeof(name), "%06lld.jpg", static_cast<long long>(image_id));
    const double m = std::min(image.width, image.height);

    // Which object last painted each pixel (-1: background or clutter), for min_visible.
    std::vector<int32_t> owner(track ? image.pixels() : 0, -1);
    auto unown = [&](const std::vector<double>& xy) {
      if (!track) return;
      synth::fill_with(image, xy, [&](int x, int y, uint8_t*) {
        owner[static_cast<size_t>(y) * image.width + x] = -1;
      });
    };
    // Clutter comes from its own stream, so that the objects stay those of the same seed without
    // clutter; each item gets its own seed, drawn now (under the objects) or after them (over).
    std::vector<uint64_t> over;
    if (o.clutter > 0) {
      Rng clutter(mix_seed(mix_seed(o.seed, 0xC1077E4), static_cast<uint64_t>(image_id)));
      for (int k = 0; k < o.clutter; ++k) {
        const uint64_t seed = clutter.next();
        if (clutter.uniform() < 0.5) {
          over.push_back(seed);
          continue;
        }
        Rng item(seed);
        synth::clutter_item(image, item, item.uniform(0.04, 0.25) * m, /*patches=*/true);
      }
    }

    const int objects = rng.integer(1, o.max_objects);
    std::vector<Object> drawn;
    for (int k = 0; k < objects; ++k) {
      const int category = rng.integer(1, o.classes);
      const double u = rng.uniform();
      const double r =
          (o.log_scale ? std::exp(std::log(r_lo) + (std::log(r_hi) - std::log(r_lo)) * u)
                       : r_lo + (r_hi - r_lo) * u) *
          m;
      const Points points = shape_points(category, r);
      const double extent = reach(category, r, points);
      const double cx = rng.uniform(extent, image.width - extent);
      const double cy = rng.uniform(extent, image.height - extent);
      const double angle = rng.uniform(0, 2 * kPi);
      uint8_t color[3];
      for (auto& c : color) c = static_cast<uint8_t>(rng.integer(0, 255));
      Object object;
      object.category = category;
      object.xy = synth::place(points, cx, cy, angle);
      const auto id = static_cast<int32_t>(k);
      object.pixels = synth::fill_with(image, object.xy, [&](int x, int y, uint8_t* p) {
        p[0] = color[0];
        p[1] = color[1];
        p[2] = color[2];
        if (track) owner[static_cast<size_t>(y) * image.width + x] = id;
      });
      drawn.push_back(std::move(object));
    }
    for (const uint64_t seed : over) {
      Rng item(seed);
      unown(synth::clutter_item(image, item, item.uniform(0.04, 0.25) * m, /*patches=*/true));
    }
    std::vector<int64_t> visible(drawn.size(), 0);
    for (const int32_t k : owner)
      if (k >= 0) ++visible[static_cast<size_t>(k)];

    for (size_t k = 0; k < drawn.size(); ++k) {
      const auto& xy = drawn[k].xy;
      if (track && static_cast<double>(visible[k]) <
                       o.min_visible * static_cast<double>(drawn[k].pixels) + 1e-9) {
        ++result.dropped_occluded;
        continue;
      }
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
                           ",\"category_id\":" + std::to_string(drawn[k].category) + ",\"bbox\":[" +
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
  for (int c = 0; c < o.classes; ++c) {
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
  if (o.on_progress) o.on_progress(o.images, o.images);
  return result;
}

}  // namespace largedet::data
