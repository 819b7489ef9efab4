// Random cropping (INPUT.CROP.*): detectron2's four size rules, the window's place, the pixels, and
// the instances following the crop exactly (boxes clipped or recomputed from the masks, masks
// cropped, empty instances dropped), each against an independent reference.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>

#include "largedet/core/error.h"
#include "largedet/data/crop.h"
#include "largedet/data/mapper.h"
#include "largedet/data/transforms.h"
#include "largedet/evaluation/rle.h"
#include "largedet/ops/mask_targets.h"

namespace largedet::data {
namespace {

CropOptions crop(CropType type, double h, double w) {
  CropOptions o;
  o.enabled = true;
  o.type = type;
  o.size = {h, w};
  return o;
}

// Every window of 2,000 seeds is inside the image, of a size detectron2's rule allows, and the
// corners reach both ends of where the window fits.
TEST(Crop, WindowsFollowDetectron2sSizeRulesAndFitTheImage) {
  struct Case {
    CropOptions options;
    int min_h, max_h, min_w, max_w;  // the sizes the rule allows for a 480 x 640 image
  } cases[] = {
      // relative: int(480 * 0.5 + 0.5), int(640 * 0.25 + 0.5)
      {crop(CropType::kRelative, 0.5, 0.25), 240, 240, 160, 160},
      // relative_range: fractions uniform in [0.5, 1) and [0.9, 1)
      {crop(CropType::kRelativeRange, 0.5, 0.9), 240, 480, 576, 640},
      // absolute: the size, at most the image's
      {crop(CropType::kAbsolute, 100, 1000), 100, 100, 640, 640},
      // absolute_range: each side uniform in [min(side, 300), min(side, 500)]
      {crop(CropType::kAbsoluteRange, 300, 500), 300, 480, 300, 500},
  };
  for (const auto& c : cases) {
    int lo_h = 1 << 30, hi_h = 0, lo_w = 1 << 30, hi_w = 0;
    bool x0_at_0 = false, x0_at_end = false;
    for (uint64_t seed = 0; seed < 2000; ++seed) {
      const CropWindow w = random_crop_window(480, 640, c.options, seed);
      ASSERT_GE(w.x0, 0);
      ASSERT_GE(w.y0, 0);
      ASSERT_LE(w.x0 + w.width, 640);
      ASSERT_LE(w.y0 + w.height, 480);
      lo_h = std::min(lo_h, w.height), hi_h = std::max(hi_h, w.height);
      lo_w = std::min(lo_w, w.width), hi_w = std::max(hi_w, w.width);
      x0_at_0 |= w.x0 == 0;
      x0_at_end |= w.x0 + w.width == 640;
      const CropWindow again = random_crop_window(480, 640, c.options, seed);
      EXPECT_EQ(std::tie(w.x0, w.y0, w.width, w.height),
                std::tie(again.x0, again.y0, again.width, again.height));
    }
    EXPECT_GE(lo_h, c.min_h);
    EXPECT_LE(hi_h, c.max_h);
    EXPECT_GE(lo_w, c.min_w);
    EXPECT_LE(hi_w, c.max_w);
    // The ranges are covered, not only respected (within 2 % of their ends).
    EXPECT_LE(lo_h, c.min_h + (c.max_h - c.min_h) / 50);
    EXPECT_GE(hi_h, c.max_h - (c.max_h - c.min_h) / 50 - 1);
    EXPECT_TRUE(x0_at_0 || hi_w == 640);
    EXPECT_TRUE(x0_at_end);
  }
  // An image smaller than an absolute_range's least size is kept whole.
  const CropWindow whole = random_crop_window(50, 80, crop(CropType::kAbsoluteRange, 300, 500), 7);
  EXPECT_EQ(whole.x0, 0);
  EXPECT_EQ(whole.y0, 0);
  EXPECT_EQ(whole.width, 80);
  EXPECT_EQ(whole.height, 50);
}

TEST(Crop, SizesThatCannotBeAreRefusedWithTheRule) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& [type, h, w] :
       std::vector<std::tuple<CropType, double, double>>{{CropType::kRelative, 0, 0.5},
                                                         {CropType::kRelativeRange, 1.5, 0.5},
                                                         {CropType::kRelativeRange, nan, 0.5},
                                                         {CropType::kAbsolute, 0.5, 100},
                                                         {CropType::kAbsolute, 100, 10.5},
                                                         {CropType::kAbsolute, 1e300, 100},
                                                         {CropType::kAbsoluteRange, 600, 384},
                                                         {CropType::kAbsoluteRange, -1, 384}}) {
    EXPECT_THROW(check_crop_options(crop(type, h, w)), Error) << h << " " << w;
  }
  for (const auto& [type, h, w] :
       std::vector<std::tuple<CropType, double, double>>{{CropType::kRelative, 1, 0.5},
                                                         {CropType::kRelativeRange, 0.9, 0.9},
                                                         {CropType::kAbsolute, 512, 512},
                                                         {CropType::kAbsoluteRange, 384, 600}}) {
    EXPECT_NO_THROW(check_crop_options(crop(type, h, w))) << h << " " << w;
  }
  EXPECT_EQ(parse_crop_type("absolute_range"), CropType::kAbsoluteRange);
  EXPECT_THROW(parse_crop_type("random"), Error);
}

TEST(Crop, ImagePixelsAreTheWindows) {
  Image image;
  image.width = 7;
  image.height = 5;
  for (int i = 0; i < 7 * 5 * 3; ++i) image.rgb.push_back(static_cast<uint8_t>(i));
  const Image out = crop_image(image, CropWindow{2, 1, 4, 3});
  ASSERT_EQ(out.width, 4);
  ASSERT_EQ(out.height, 3);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(out.rgb[(y * 4 + x) * 3 + c], image.rgb[((y + 1) * 7 + x + 2) * 3 + c]);
  EXPECT_THROW(crop_image(image, CropWindow{4, 0, 4, 5}), Error);
}

// The reference for convex polygons: Sutherland-Hodgman clipping against each side of the
// rectangle in turn, exact for a convex polygon, and the extent of what is left.
std::array<double, 4> clipped_convex_extent(std::vector<std::array<double, 2>> poly, double left,
                                            double top, double right, double bottom) {
  // Keep the side where f(point) >= 0; f is affine, so a crossing is where it is 0.
  auto clip = [&](auto f) {
    std::vector<std::array<double, 2>> out;
    for (size_t i = 0; i < poly.size(); ++i) {
      const auto a = poly[i], b = poly[(i + 1) % poly.size()];
      const double fa = f(a), fb = f(b);
      if (fa >= 0) out.push_back(a);
      if ((fa >= 0) != (fb >= 0)) {
        const double t = fa / (fa - fb);
        out.push_back({a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])});
      }
    }
    poly = out;
  };
  clip([&](const std::array<double, 2>& p) { return p[0] - left; });
  clip([&](const std::array<double, 2>& p) { return right - p[0]; });
  clip([&](const std::array<double, 2>& p) { return p[1] - top; });
  clip([&](const std::array<double, 2>& p) { return bottom - p[1]; });
  std::array<double, 4> e = kNoExtent;
  for (const auto& p : poly)
    e = {std::min(e[0], p[0]), std::min(e[1], p[1]), std::max(e[2], p[0]), std::max(e[3], p[1])};
  return e;
}

TEST(Crop, PolygonExtentInsideARectangleIsExact) {
  uint64_t seed = 5;
  auto next = [&](int modulus) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>((seed >> 33) % static_cast<uint64_t>(modulus));
  };
  // Random convex polygons (the hull of random points, Andrew's monotone chain) against the
  // clipping reference.
  int partly = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<std::array<double, 2>> points(3 + static_cast<int>(next(10)));
    for (auto& p : points) p = {next(2000) / 100.0 + 0.003, next(2000) / 100.0 + 0.007};
    std::sort(points.begin(), points.end());
    auto cross = [](const auto& o, const auto& a, const auto& b) {
      return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
    };
    std::vector<std::array<double, 2>> hull(2 * points.size());
    size_t k = 0;
    for (size_t i = 0; i < points.size(); ++i) {
      while (k >= 2 && cross(hull[k - 2], hull[k - 1], points[i]) <= 0) --k;
      hull[k++] = points[i];
    }
    for (size_t i = points.size() - 1, lower = k + 1; i-- > 0;) {
      while (k >= lower && cross(hull[k - 2], hull[k - 1], points[i]) <= 0) --k;
      hull[k++] = points[i];
    }
    hull.resize(k - 1);
    if (hull.size() < 3) continue;
    std::vector<double> xy;
    for (const auto& p : hull) xy.insert(xy.end(), {p[0], p[1]});
    const double left = next(15), top = next(15), right = left + 1 + next(10),
                 bottom = top + 1 + next(10);
    std::array<double, 4> exact = kNoExtent;
    const bool any = add_polygon_extent(xy, left, top, right, bottom, &exact);
    const auto reference = clipped_convex_extent(hull, left, top, right, bottom);
    ASSERT_EQ(any, reference[0] <= reference[2]) << trial;
    if (!any) continue;
    ++partly;
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(exact[j], reference[j], 1e-9) << trial << " " << j;
  }
  EXPECT_GT(partly, 60);
  // Random self-intersecting polygons (even-odd): every grid point inside both is within the
  // extent.
  auto inside_polygon = [](const std::vector<double>& xy, double px, double py) {
    // Crossings of a ray upwards (the implementation casts one to the right).
    bool in = false;
    const size_t n = xy.size() / 2;
    for (size_t i = 0; i < n; ++i) {
      const double ax = xy[2 * i], ay = xy[2 * i + 1];
      const double bx = xy[2 * ((i + 1) % n)], by = xy[2 * ((i + 1) % n) + 1];
      if ((ax <= px) == (bx <= px)) continue;
      if (ay + (px - ax) / (bx - ax) * (by - ay) < py) in = !in;
    }
    return in;
  };
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<double> polygon;
    const int n = 3 + static_cast<int>(next(8));
    for (int k = 0; k < 2 * n; ++k) polygon.push_back(next(2000) / 100.0 + 0.003);
    const double left = next(10), top = next(10), right = left + 2 + next(10),
                 bottom = top + 2 + next(10);
    std::array<double, 4> exact = kNoExtent;
    const bool any = add_polygon_extent(polygon, left, top, right, bottom, &exact);
    for (double y = top; y <= bottom; y += 1.0 / 16) {
      for (double x = left; x <= right; x += 1.0 / 16) {
        if (!inside_polygon(polygon, x, y)) continue;
        ASSERT_TRUE(any) << trial;
        EXPECT_TRUE(x >= exact[0] && x <= exact[2] && y >= exact[1] && y <= exact[3])
            << trial << " (" << x << ", " << y << ")";
      }
    }
    EXPECT_TRUE(!any ||
                (exact[0] >= left && exact[2] <= right && exact[1] >= top && exact[3] <= bottom));
  }
}

// A concave polygon around the rectangle's corner: the corner is outside it, its arms cross two
// sides.
TEST(Crop, PolygonExtentOfAnLAroundACorner) {
  const std::vector<double> l = {2, 2, 15, 2, 15, 4, 4, 4, 4, 15, 2, 15};
  std::array<double, 4> extent = kNoExtent;
  EXPECT_TRUE(add_polygon_extent(l, 0, 0, 10, 10, &extent));
  EXPECT_EQ(extent, (std::array<double, 4>{2, 2, 10, 10}));
  // A rectangle the polygon surrounds without a vertex inside: the corners are the extent.
  extent = kNoExtent;
  EXPECT_TRUE(add_polygon_extent({0, 0, 20, 0, 20, 20, 0, 20}, 5, 6, 7, 8, &extent));
  EXPECT_EQ(extent, (std::array<double, 4>{5, 6, 7, 8}));
  extent = kNoExtent;
  EXPECT_FALSE(add_polygon_extent(l, 5, 5, 10, 10, &extent));  // inside the L's notch
}

Instance rect_instance(double x1, double y1, double x2, double y2) {
  Instance i;
  i.box = {float(x1), float(y1), float(x2), float(y2)};
  i.label = 3;
  i.segmentation.kind = evaluation::Segmentation::Kind::kPolygons;
  i.segmentation.polygons = {{x1, y1, x2, y1, x2, y2, x1, y2}};
  return i;
}

TEST(Crop, BoxesShiftScaleAndClipAndInstancesLeftOutAreDropped) {
  // A 100 x 50 image cropped to x 15..65, y 5..45 and resized 2x.
  TransformParams p{100, 50, 100, 80, false, CropWindow{15, 5, 50, 40}};
  const std::vector<Instance> inst = {rect_instance(10, 20, 30, 40), rect_instance(70, 0, 90, 10),
                                      rect_instance(20, 10, 40, 30)};
  Target t = transform_instances(inst, false, p);
  ASSERT_EQ(t.size(), 2);  // the second lies right of the crop
  at::Tensor expected = at::tensor({0.f, 30.f, 30.f, 70.f, 10.f, 10.f, 50.f, 50.f}).view({2, 4});
  EXPECT_TRUE(at::equal(t.boxes, expected)) << t.boxes;
  p.flip = true;
  t = transform_instances(inst, false, p);
  expected = at::tensor({70.f, 30.f, 100.f, 70.f, 50.f, 10.f, 90.f, 50.f}).view({2, 4});
  EXPECT_TRUE(at::equal(t.boxes, expected)) << t.boxes;
  // Normalised boxes (OpenImages) follow the same window.
  Instance n;
  n.box = {0.10f, 0.40f, 0.30f, 0.80f};  // pixels 10..30 x 20..40
  n.label = 1;
  p.flip = false;
  t = transform_instances({n}, true, p);
  EXPECT_TRUE(at::allclose(t.boxes, at::tensor({0.f, 30.f, 30.f, 70.f}).view({1, 4}))) << t.boxes;
  // An instance touching the crop along a line only has no area: dropped.
  EXPECT_EQ(transform_instances({rect_instance(0, 0, 15, 30)}, false, p).size(), 0);
}

at::Tensor raster(const Target& t, int64_t k, int height, int width) {
  // The edges sampled at every pixel centre of the output image: a box over it all, at its size.
  const int size = std::max(height, width);
  const auto box = at::tensor({0.f, 0.f, float(size), float(size)}).view({1, 4});
  return ops::rasterize_mask_edges(t.mask_edges.narrow(0, k, 1), at::zeros({1}, at::kLong), box,
                                   size)[0]
      .slice(0, 0, height)
      .slice(1, 0, width)
      .to(at::kByte);
}

// Masks: the cropped target is the bitmap rasterised at the original size (pycocotools' rule),
// sliced to the window and scaled; with masks the boxes are the cropped masks' extents.
TEST(Crop, MasksAreTheOriginalBitmapsWindowAndBoxesTheirExtent) {
  TargetOptions masks;
  masks.masks = true;
  // A triangle whose annotated box is its full extent; the crop cuts its wide end off.
  Instance triangle;
  triangle.box = {2, 2, 18, 12};
  triangle.label = 1;
  triangle.segmentation.kind = evaluation::Segmentation::Kind::kPolygons;
  triangle.segmentation.polygons = {{2, 2, 18, 2, 2, 12}};
  const CropWindow window{4, 0, 8, 10};  // x 4..12, y 0..10; resized 2x (scales are exact)
  TransformParams p{20, 16, 16, 20, false, window};
  const Target t = transform_instances({triangle}, false, p, masks);
  ASSERT_EQ(t.size(), 1);
  // The polygon's part in the window: x from 4 to 12, y from 2 to the window's bottom, 10 (the
  // hypotenuse y = 2 + 10 (18 - x) / 16 meets x = 4 at 10.75, below it); shifted by 4 and doubled.
  EXPECT_TRUE(at::equal(t.boxes, at::tensor({0.f, 4.f, 16.f, 20.f}).view({1, 4}))) << t.boxes;
  const evaluation::Rle rle =
      evaluation::rle_from_polygon(triangle.segmentation.polygons[0], 16, 20);
  const auto decoded = evaluation::rle_decode(rle);  // column-major [20][16]
  const at::Tensor full =
      at::from_blob(const_cast<uint8_t*>(decoded.data()), {20, 16}, at::kByte).t();
  const at::Tensor expected =
      full.slice(0, 0, 10).slice(1, 4, 12).repeat_interleave(2, 0).repeat_interleave(2, 1);
  EXPECT_TRUE(at::equal(raster(t, 0, 20, 16), expected)) << raster(t, 0, 20, 16);

  // An RLE mask's box is its cropped bitmap's extent (detectron2's BitMasks).
  Instance blob;
  blob.box = {0, 0, 6, 6};
  blob.label = 2;
  blob.segmentation.kind = evaluation::Segmentation::Kind::kRle;
  // 6 x 6, column-major: columns 1..4, rows 2..3.
  blob.segmentation.rle = {6, 6, {8, 2, 4, 2, 4, 2, 4, 2, 8}};
  TransformParams q{6, 6, 4, 4, false, CropWindow{2, 1, 4, 4}};  // scale 1
  const Target b = transform_instances({blob}, false, q, masks);
  ASSERT_EQ(b.size(), 1);
  EXPECT_TRUE(at::equal(b.boxes, at::tensor({0.f, 1.f, 3.f, 3.f}).view({1, 4}))) << b.boxes;
  // Without masks the annotated box is clipped, not recomputed.
  const Target plain = transform_instances({blob}, false, q);
  EXPECT_TRUE(at::equal(plain.boxes, at::tensor({0.f, 0.f, 4.f, 4.f}).view({1, 4}))) << plain.boxes;
}

// mask_edges of a window give back exactly the bitmap's window, for random polygons and windows.
TEST(Crop, MaskEdgesOfAWindowAreTheBitmapsWindow) {
  uint64_t seed = 3;
  auto next = [&](int modulus) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<int>((seed >> 33) % static_cast<uint64_t>(modulus));
  };
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> polygon;
    const int n = 3 + next(9);
    for (int k = 0; k < 2 * n; ++k) polygon.push_back(next(4000) / 100.0);
    const evaluation::Rle rle = evaluation::rle_from_polygon(polygon, 40, 40);
    const auto decoded = evaluation::rle_decode(rle);
    const at::Tensor full =
        at::from_blob(const_cast<uint8_t*>(decoded.data()), {40, 40}, at::kByte).t();
    CropWindow w;
    w.width = 1 + next(40);
    w.height = 1 + next(40);
    w.x0 = next(40 - w.width + 1);
    w.y0 = next(40 - w.height + 1);
    const auto edges = mask_edges(rle, w);
    Target t;
    t.mask_edges = at::zeros({1, static_cast<int64_t>(edges.size()), 3});
    for (size_t j = 0; j < edges.size(); ++j) {
      t.mask_edges[0][j][0] = edges[j].x;
      t.mask_edges[0][j][1] = edges[j].y0;
      t.mask_edges[0][j][2] = edges[j].y1;
    }
    const at::Tensor expected = full.slice(0, w.y0, w.y0 + w.height).slice(1, w.x0, w.x0 + w.width);
    EXPECT_TRUE(at::equal(raster(t, 0, w.height, w.width), expected)) << "trial " << trial;
  }
}

// The mapper crops the decoded pixels and sizes the sample from the crop: the output is found in
// the input by search (random pixels make the place unique), and the box follows that place.
TEST(Crop, MapperCropsThePixelsAndTheBoxesAlike) {
  const int width = 40, height = 30;
  std::vector<uint8_t> pixels(width * height * 3);
  uint64_t seed = 9;
  for (auto& v : pixels) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<uint8_t>(seed >> 56);
  }
  const std::string png = encode_png(pixels, width, height);
  Record record;
  record.width = width;
  record.height = height;
  record.path = "random.png";
  Instance inst;
  inst.box = {10, 5, 30, 25};
  inst.label = 1;
  record.instances = {inst};
  MapperOptions options;
  options.min_sizes = {20};
  options.max_size = 1000;
  options.random_flip = false;
  options.crop = crop(CropType::kAbsolute, 20, 20);
  std::set<std::pair<int, int>> places;
  for (uint64_t s = 0; s < 12; ++s) {
    const Sample sample = map_encoded(record, png, options, s);
    ASSERT_EQ(sample.image.width, 20);
    ASSERT_EQ(sample.image.height, 20);
    EXPECT_EQ(sample.width, 20);  // short side 20 of a 20 x 20 crop: no resize
    int found_x = -1, found_y = -1;
    for (int y0 = 0; y0 + 20 <= height && found_x < 0; ++y0) {
      for (int x0 = 0; x0 + 20 <= width; ++x0) {
        bool same = true;
        for (int y = 0; y < 20 && same; ++y)
          same = std::equal(sample.image.rgb.begin() + y * 20 * 3,
                            sample.image.rgb.begin() + (y + 1) * 20 * 3,
                            pixels.begin() + ((y0 + y) * width + x0) * 3);
        if (same) {
          found_x = x0, found_y = y0;
          break;
        }
      }
    }
    ASSERT_GE(found_x, 0) << "the crop is not a window of the image";
    places.insert({found_x, found_y});
    const auto clip = [](double v) { return static_cast<float>(std::clamp(v, 0.0, 20.0)); };
    const at::Tensor expected = at::tensor({clip(10.0 - found_x), clip(5.0 - found_y),
                                            clip(30.0 - found_x), clip(25.0 - found_y)})
                                    .view({1, 4});
    EXPECT_TRUE(at::equal(sample.target.boxes, expected)) << sample.target.boxes;
  }
  EXPECT_GT(places.size(), 3u);  // the window moves with the seed
}

}  // namespace
}  // namespace largedet::data
