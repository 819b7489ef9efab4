// Drawing helpers shared by the synthetic generators (synthetic.cpp: detection shapes,
// synthetic_classify.cpp: the classification set). Internal to the data layer. Everything random
// comes from Rng, a splitmix64 stream: same seed, same pixels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "largedet/data/image.h"
#include "largedet/data/seed.h"

namespace largedet::data::synth {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() { return state_ = mix_seed(state_, 0x5EED); }
  double uniform() { return uniform01(next()); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  int integer(int lo, int hi) { return static_cast<int>(uniform_int(next(), lo, hi)); }

 private:
  uint64_t state_;
};

constexpr double kPi = 3.14159265358979323846;

using Points = std::vector<std::pair<double, double>>;

// The points rotated by `angle` and moved to (cx, cy), as a flat x0,y0,x1,y1,... list rounded to
// two decimals (what the JSON holds is exactly what is drawn).
inline std::vector<double> place(const Points& points, double cx, double cy, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  std::vector<double> xy;
  xy.reserve(points.size() * 2);
  for (const auto& [x, y] : points) {
    xy.push_back(std::round((cx + x * c - y * s) * 100) / 100);
    xy.push_back(std::round((cy + x * s + y * c) * 100) / 100);
  }
  return xy;
}

// The largest distance of a point from the origin: how far a shape reaches from its centre.
inline double reach_of(const Points& points) {
  double r2 = 0;
  for (const auto& [x, y] : points) r2 = std::max(r2, x * x + y * y);
  return std::sqrt(r2);
}

// Even-odd rule: a polygon with a zero-width slit (a ring drawn as one outline) has a hole.
inline bool inside(const std::vector<double>& xy, double px, double py) {
  bool in = false;
  const size_t n = xy.size() / 2;
  for (size_t i = 0, j = n - 1; i < n; j = i++) {
    const double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
    if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

struct Box {
  double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
};

inline Box bounds(const std::vector<double>& xy) {
  Box b;
  for (size_t i = 0; i < xy.size(); i += 2) {
    b.x0 = std::min(b.x0, xy[i]);
    b.x1 = std::max(b.x1, xy[i]);
    b.y0 = std::min(b.y0, xy[i + 1]);
    b.y1 = std::max(b.y1, xy[i + 1]);
  }
  return b;
}

// Calls paint(x, y, pixel) for every pixel whose centre lies inside the polygon; returns how many.
template <typename Paint>
int64_t fill_with(Image& image, const std::vector<double>& xy, Paint&& paint) {
  const Box b = bounds(xy);
  const int ya = std::max(0, static_cast<int>(b.y0));
  const int yb = std::min(image.height - 1, static_cast<int>(b.y1) + 1);
  const int xa = std::max(0, static_cast<int>(b.x0));
  const int xb = std::min(image.width - 1, static_cast<int>(b.x1) + 1);
  int64_t count = 0;
  for (int y = ya; y <= yb; ++y) {
    for (int x = xa; x <= xb; ++x) {
      if (!inside(xy, x + 0.5, y + 0.5)) continue;
      paint(x, y, image.rgb.data() + (static_cast<size_t>(y) * image.width + x) * 3);
      ++count;
    }
  }
  return count;
}

inline int64_t fill(Image& image, const std::vector<double>& xy, const uint8_t color[3]) {
  return fill_with(image, xy, [&](int, int, uint8_t* p) {
    p[0] = color[0];
    p[1] = color[1];
    p[2] = color[2];
  });
}

inline void random_color(Rng& rng, uint8_t color[3]) {
  for (int c = 0; c < 3; ++c) color[c] = static_cast<uint8_t>(rng.integer(0, 255));
}

// Stripes at a random angle and frequency between two colours, plus per-pixel noise.
inline void background(Image& image, Rng& rng) {
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

// An unannotated distractor `size` pixels across at a random place: an irregular blob, a thin
// line, or (with `patches`) a square of stripes or checks. Returns its outline (for occlusion).
inline std::vector<double> clutter_item(Image& image, Rng& rng, double size, bool patches) {
  const int kind = rng.integer(0, patches ? 2 : 1);
  const double cx = rng.uniform(0, image.width), cy = rng.uniform(0, image.height);
  const double angle = rng.uniform(0, 2 * kPi);
  uint8_t a[3], b[3];
  random_color(rng, a);
  random_color(rng, b);
  Points points;
  if (kind == 0) {  // blob: 7..11 vertices at random radii
    const int n = rng.integer(7, 11);
    for (int k = 0; k < n; ++k) {
      const double r = 0.5 * size * rng.uniform(0.45, 1.0);
      points.emplace_back(r * std::cos(2 * kPi * k / n), r * std::sin(2 * kPi * k / n));
    }
  } else {  // a line 1..3 px thick, or a textured square
    const double half_w = kind == 1 ? 0.5 * rng.uniform(1.0, 3.0) : 0.35 * size;
    const double half_l = kind == 1 ? 0.5 * size * rng.uniform(1.0, 2.0) : 0.35 * size;
    points = {{-half_l, -half_w}, {half_l, -half_w}, {half_l, half_w}, {-half_l, half_w}};
  }
  const auto xy = place(points, cx, cy, angle);
  if (kind < 2) {
    fill(image, xy, a);
  } else {
    const double period = std::max(2.0, size * rng.uniform(0.08, 0.2));
    const bool checks = rng.uniform() < 0.5;
    const double c = std::cos(angle), s = std::sin(angle);
    fill_with(image, xy, [&](int x, int y, uint8_t* p) {
      const double u = (x - cx) * c + (y - cy) * s, v = -(x - cx) * s + (y - cy) * c;
      const int64_t k = static_cast<int64_t>(std::floor(u / period)) +
                        (checks ? static_cast<int64_t>(std::floor(v / period)) : 0);
      const uint8_t* col = (k & 1) ? a : b;
      p[0] = col[0];
      p[1] = col[1];
      p[2] = col[2];
    });
  }
  return xy;
}

inline std::string number(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.2f", v);
  return buffer;
}

}  // namespace largedet::data::synth
