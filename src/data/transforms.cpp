#include "largedet/data/transforms.h"

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/evaluation/rle.h"

namespace largedet::data {

std::pair<int, int> resize_shortest_edge_size(int height, int width, int short_side, int max_size) {
  LARGEDET_CHECK(height > 0 && width > 0 && short_side > 0, "cannot resize a ", width, "x", height,
                 " image to short side ", short_side);
  double scale = static_cast<double>(short_side) / std::min(height, width);
  double h = height * scale, w = width * scale;
  if (max_size > 0 && std::max(h, w) > max_size) {
    const double shrink = max_size / std::max(h, w);
    h *= shrink;
    w *= shrink;
  }
  return {std::max(1, static_cast<int>(h + 0.5)), std::max(1, static_cast<int>(w + 0.5))};
}

namespace {

// Source taps of one output coordinate, half-pixel centres, edges clamped (torch's rule).
struct Taps {
  int i0, i1;
  float w1;  // weight of i1; i0 gets 1 - w1
};

std::vector<Taps> taps(int in, int out) {
  std::vector<Taps> t(out);
  const double scale = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    double src = std::max(0.0, (o + 0.5) * scale - 0.5);
    int i0 = std::min(static_cast<int>(src), in - 1);
    int i1 = std::min(i0 + 1, in - 1);
    t[o] = {i0, i1, static_cast<float>(src - i0)};
  }
  return t;
}

}  // namespace

Image resize_bilinear(const Image& image, int out_width, int out_height) {
  LARGEDET_CHECK(out_width > 0 && out_height > 0 && image.pixels() > 0,
                 "resize_bilinear: ", image.width, "x", image.height, " -> ", out_width, "x",
                 out_height);
  Image out;
  out.width = out_width;
  out.height = out_height;
  out.rgb.resize(out.pixels() * 3);
  if (out_width == image.width && out_height == image.height) {
    out.rgb = image.rgb;
    return out;
  }
  const auto tx = taps(image.width, out_width);
  const auto ty = taps(image.height, out_height);
  // Horizontal pass over the source rows into floats, then a vertical blend of two rows, which
  // the compiler vectorises.
  const size_t row = static_cast<size_t>(out_width) * 3;
  std::vector<float> horizontal(static_cast<size_t>(image.height) * row);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* src = image.rgb.data() + static_cast<size_t>(y) * image.width * 3;
    float* dst = horizontal.data() + y * row;
    for (int x = 0; x < out_width; ++x) {
      const Taps& t = tx[x];
      const uint8_t* a = src + 3 * t.i0;
      const uint8_t* b = src + 3 * t.i1;
      const float w0 = 1.0f - t.w1;
      dst[3 * x + 0] = a[0] * w0 + b[0] * t.w1;
      dst[3 * x + 1] = a[1] * w0 + b[1] * t.w1;
      dst[3 * x + 2] = a[2] * w0 + b[2] * t.w1;
    }
  }
  for (int y = 0; y < out_height; ++y) {
    const Taps& t = ty[y];
    const float* a = horizontal.data() + t.i0 * row;
    const float* b = horizontal.data() + t.i1 * row;
    const float w1 = t.w1, w0 = 1.0f - t.w1;
    uint8_t* dst = out.rgb.data() + y * row;
    for (size_t i = 0; i < row; ++i) {
      const float v = a[i] * w0 + b[i] * w1 + 0.5f;
      dst[i] = static_cast<uint8_t>(std::min(v, 255.0f));
    }
  }
  return out;
}

void resize_normalize_into(const Image& image, int out_width, int out_height, bool flip,
                           const float mean[3], const float inv_std[3], float* planes,
                           int64_t row_stride, int64_t plane_stride) {
  LARGEDET_CHECK(out_width > 0 && out_height > 0 && image.pixels() > 0 && out_width <= row_stride &&
                     out_height <= plane_stride / row_stride,
                 "resize_normalize_into: ", image.width, "x", image.height, " -> ", out_width, "x",
                 out_height);
  auto tx = taps(image.width, out_width);
  if (flip) std::reverse(tx.begin(), tx.end());
  const auto ty = taps(image.height, out_height);
  // Horizontal pass into three planar float buffers, only for the source rows the vertical pass
  // reads; then per channel a vertical blend of two contiguous rows, which vectorises.
  const size_t W = static_cast<size_t>(out_width);
  std::vector<float> horizontal(3 * static_cast<size_t>(image.height) * W);
  std::vector<uint8_t> needed(image.height, 0);
  for (const auto& t : ty) needed[t.i0] = needed[t.i1] = 1;
  for (int y = 0; y < image.height; ++y) {
    if (!needed[y]) continue;
    const uint8_t* src = image.rgb.data() + static_cast<size_t>(y) * image.width * 3;
    float* h0 = horizontal.data() + (0 * image.height + y) * W;
    float* h1 = horizontal.data() + (1 * static_cast<size_t>(image.height) + y) * W;
    float* h2 = horizontal.data() + (2 * static_cast<size_t>(image.height) + y) * W;
    for (size_t x = 0; x < W; ++x) {
      const Taps& t = tx[x];
      const uint8_t* a = src + 3 * t.i0;
      const uint8_t* b = src + 3 * t.i1;
      const float w1 = t.w1, w0 = 1.0f - t.w1;
      h0[x] = a[0] * w0 + b[0] * w1;
      h1[x] = a[1] * w0 + b[1] * w1;
      h2[x] = a[2] * w0 + b[2] * w1;
    }
  }
  const int64_t rows = plane_stride / row_stride;
  for (int c = 0; c < 3; ++c) {
    const float* plane = horizontal.data() + static_cast<size_t>(c) * image.height * W;
    float* out = planes + c * plane_stride;
    const float m = mean[c], k = inv_std[c];
    for (int y = 0; y < out_height; ++y) {
      const Taps& t = ty[y];
      const float* a = plane + t.i0 * W;
      const float* b = plane + t.i1 * W;
      const float w1 = t.w1 * k, w0 = (1.0f - t.w1) * k, bias = -m * k;
      float* dst = out + y * row_stride;
      for (size_t x = 0; x < W; ++x) dst[x] = a[x] * w0 + b[x] * w1 + bias;
      std::fill(dst + W, dst + row_stride, 0.0f);
    }
    std::fill(out + out_height * row_stride, out + rows * row_stride, 0.0f);
  }
}

void flip_horizontal(Image& image) {
  for (int y = 0; y < image.height; ++y) {
    uint8_t* row = image.rgb.data() + static_cast<size_t>(y) * image.width * 3;
    for (int l = 0, r = image.width - 1; l < r; ++l, --r) {
      std::swap_ranges(row + 3 * l, row + 3 * l + 3, row + 3 * r);
    }
  }
}

Target transform_instances(const std::vector<Instance>& instances, bool normalized,
                           const TransformParams& p, const TargetOptions& options) {
  std::vector<const Instance*> kept;
  for (const auto& i : instances) {
    if (options.keep_crowd || !i.iscrowd) kept.push_back(&i);
  }
  const int64_t n = static_cast<int64_t>(kept.size());
  Target target;
  target.boxes = at::empty({n, 4}, at::kFloat);
  target.labels = at::empty({n}, at::kLong);
  target.is_group_of = at::empty({n}, at::kBool);
  target.polygons.resize(n);
  // Scale from the record's coordinates to the output image.
  const double sx = normalized ? p.out_width : static_cast<double>(p.out_width) / p.in_width;
  const double sy = normalized ? p.out_height : static_cast<double>(p.out_height) / p.in_height;
  const double W = p.out_width;
  auto boxes = target.boxes.accessor<float, 2>();
  for (int64_t k = 0; k < n; ++k) {
    const Instance& inst = *kept[k];
    double x1 = inst.box[0] * sx, y1 = inst.box[1] * sy;
    double x2 = inst.box[2] * sx, y2 = inst.box[3] * sy;
    if (p.flip) {
      const double fx1 = W - x2, fx2 = W - x1;
      x1 = fx1;
      x2 = fx2;
    }
    boxes[k][0] = static_cast<float>(x1);
    boxes[k][1] = static_cast<float>(y1);
    boxes[k][2] = static_cast<float>(x2);
    boxes[k][3] = static_cast<float>(y2);
    target.labels.data_ptr<int64_t>()[k] = inst.label;
    target.is_group_of.data_ptr<bool>()[k] = inst.is_group_of;
    const auto& seg = inst.segmentation;
    if (seg.kind == evaluation::Segmentation::Kind::kPolygons &&
        !(seg.polygons.size() > 0 && seg.polygons[0].size() == 4)) {
      for (const auto& poly : seg.polygons) {
        std::vector<float> xy(poly.size());
        for (size_t j = 0; j + 1 < poly.size(); j += 2) {
          const double x = poly[j] * sx;
          xy[j] = static_cast<float>(p.flip ? W - x : x);
          xy[j + 1] = static_cast<float>(poly[j + 1] * sy);
        }
        target.polygons[k].push_back(std::move(xy));
      }
    }
  }
  if (options.masks) {
    target.masks = at::zeros({n, p.out_height, p.out_width}, at::kByte);
    for (int64_t k = 0; k < n; ++k) {
      const auto& seg = kept[k]->segmentation;
      if (seg.empty()) continue;  // no segmentation: an empty mask
      const evaluation::Rle rle = evaluation::segmentation_to_rle(
          seg, static_cast<uint32_t>(p.in_height), static_cast<uint32_t>(p.in_width));
      if (rle.h == 0 || rle.w == 0) continue;
      // rle_decode is column-major: [w, h] in memory, transposed to [h, w].
      auto decoded = evaluation::rle_decode(rle);
      at::Tensor mask =
          at::from_blob(decoded.data(), {static_cast<int64_t>(rle.w), static_cast<int64_t>(rle.h)},
                        at::kByte)
              .t()
              .unsqueeze(0)
              .unsqueeze(0);
      mask = at::upsample_nearest2d(mask.to(at::kFloat), {p.out_height, p.out_width});
      if (p.flip) mask = mask.flip({3});
      target.masks[k].copy_(mask[0][0]);
    }
  }
  return target;
}

}  // namespace largedet::data
