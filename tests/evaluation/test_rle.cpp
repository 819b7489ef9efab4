// RLE masks against strings, areas, boxes and IoUs that pycocotools 2.0.11 produced (the values
// below were printed by it), plus round trips and malformed strings.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "largedet/core/error.h"
#include "largedet/evaluation/rle.h"

namespace largedet::evaluation {
namespace {

std::vector<double> poly(std::initializer_list<double> xy) { return xy; }

TEST(Rle, EncodeMatchesPycocotools) {
  // np.zeros((6,5)); M[1:4,1:3]=1; M[5,4]=1; M[0,0]=1, column-major.
  const std::vector<uint8_t> mask = {1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1,
                                     1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const Rle rle = rle_encode(mask.data(), 6, 5);
  EXPECT_EQ(rle_to_string(rle), "0162M0:N");
  EXPECT_EQ(rle_area(rle), 8u);
  EXPECT_EQ(rle_to_bbox(rle), (BoxXywh{0, 0, 5, 6}));
  EXPECT_EQ(rle_decode(rle), mask);
  EXPECT_EQ(rle_from_string("0162M0:N", 6, 5), rle);
}

TEST(Rle, LargeMaskWithNegativeDeltas) {
  std::vector<uint8_t> mask(1000 * 1000, 0);
  for (int y = 0; y < 1000; y += 7) mask[3 * 1000 + y] = 1;
  for (int x = 900; x < 1000; ++x)
    for (int y = 500; y < 1000; ++y) mask[x * 1000 + y] = 1;
  const Rle rle = rle_encode(mask.data(), 1000, 1000);
  const std::string s = rle_to_string(rle);
  EXPECT_EQ(s.size(), 497u);
  EXPECT_EQ(s.substr(0, 12), "hm2160000000");
  EXPECT_EQ(rle_area(rle), 50143u);
  EXPECT_EQ(rle_from_string(s, 1000, 1000), rle);
  EXPECT_EQ(rle_decode(rle), mask);
}

TEST(Rle, RandomRoundTrips) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const uint32_t h = 1 + rng() % 40, w = 1 + rng() % 40;
    const double density = (rng() % 100) / 100.0;
    std::vector<uint8_t> mask(size_t(h) * w);
    for (auto& v : mask) v = (rng() % 1000) < density * 1000;
    const Rle rle = rle_encode(mask.data(), h, w);
    ASSERT_EQ(rle_decode(rle), mask);
    ASSERT_EQ(rle_from_string(rle_to_string(rle), h, w), rle);
    uint64_t area = 0;
    for (auto v : mask) area += v;
    ASSERT_EQ(rle_area(rle), area);
  }
}

TEST(Rle, PolygonMatchesPycocotools) {
  const Rle rle = rle_from_polygon(poly({10.2, 5.7, 40.9, 8.1, 33.3, 30.6, 4.4, 25.5}), 37, 45);
  EXPECT_EQ(rle_to_string(rle),
            "]51Q13L4M3M3L4N3O00000000001O0001O0001O00000000001O00000001O000M3M3M3M3M3N2M_4");
  EXPECT_EQ(rle_area(rle), 653u);
  EXPECT_EQ(rle_to_bbox(rle), (BoxXywh{4, 6, 37, 24}));
}

TEST(Rle, BoxMatchesPycocotools) {
  const Rle rle = rle_from_bbox({2.5, 3.5, 10.25, 7.75}, 20, 20);
  EXPECT_EQ(rle_to_string(rle), "P27=00000000000000000X4");
  EXPECT_EQ(rle_area(rle), 70u);
}

// rle_from_bbox clamps boxes to one pixel beyond the image before the outline walk: the same mask
// as rleFrPoly on the whole box (here for boxes reaching up to one image size beyond the borders).
TEST(Rle, BoxBeyondTheImageIsItsPolygonsMask) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t h = 1 + rng() % 40, w = 1 + rng() % 40;
    std::uniform_real_distribution<double> x(-1.0 * w, 2.0 * w), y(-1.0 * h, 2.0 * h);
    const double x1 = x(rng), y1 = y(rng), x2 = x(rng), y2 = y(rng);
    const Rle polygon = rle_from_polygon(poly({x1, y1, x1, y2, x2, y2, x2, y1}), h, w);
    ASSERT_EQ(rle_from_bbox({x1, y1, x2 - x1, y2 - y1}, h, w), polygon)
        << "box " << x1 << ", " << y1 << ", " << x2 << ", " << y2 << " in " << h << " x " << w;
  }
}

TEST(Rle, MergeAndIouMatchPycocotools) {
  const Rle a = rle_from_polygon(poly({1, 1, 8, 1, 8, 8, 1, 8}), 10, 10);
  const Rle b = rle_from_polygon(poly({5, 5, 9.5, 5, 9.5, 9.5, 5, 9.5}), 10, 10);
  EXPECT_EQ(rle_to_string(a), ";7300000000000c0");
  EXPECT_EQ(rle_to_string(b), "g1550000000");
  EXPECT_EQ(rle_to_string(rle_merge({a, b})), ";730000002N0004L00");
  EXPECT_EQ(rle_to_string(rle_merge({a, b}, /*intersect=*/true)), "g137000?");
  EXPECT_DOUBLE_EQ(rle_iou(a, b, false), 9.0 / 65);
  EXPECT_DOUBLE_EQ(rle_iou(a, b, true), 9.0 / 49);  // crowd: over the detection's area
  EXPECT_DOUBLE_EQ(bbox_iou({1, 2, 10, 20}, {5, 5, 10, 10}, false), 0.25);
  EXPECT_DOUBLE_EQ(bbox_iou({1, 2, 10, 20}, {5, 5, 10, 10}, true), 0.3);
  EXPECT_EQ(bbox_iou({0, 0, 1, 1}, {1, 0, 1, 1}, false), 0);  // touching is not overlapping
  const Rle other_size = rle_from_polygon(poly({1, 1, 8, 1, 8, 8, 1, 8}), 11, 10);
  EXPECT_EQ(rle_iou(a, other_size, false), -1);  // maskApi's answer for mismatched sizes
  EXPECT_EQ(rle_merge({a, other_size}).counts.size(), 0u);
}

// rle_to_bbox finds columns by multiplying with 1/h: runs that start or end exactly on a column
// boundary, one before or after it, at positions up to 2^32 - 1, with heights up to 2^32 - 1, must
// land where integer division puts them (maskApi's rleToBbox).
TEST(Rle, BoxColumnsAreExactAtColumnBoundariesAndLargePositions) {
  auto reference = [](uint32_t h, uint64_t start, uint64_t end) {  // one run [start, end)
    const uint64_t xs = start / h, xe = (end - 1) / h;
    const uint64_t ys = xs < xe ? 0 : start % h, ye = xs < xe ? h - 1 : (end - 1) % h;
    return BoxXywh{double(xs), double(ys), double(xe - xs + 1), double(ye - ys + 1)};
  };
  std::mt19937_64 rng(5);
  int checked = 0;
  for (uint32_t h : {1u, 2u, 3u, 7u, 480u, 65521u, 1000003u, 2147483647u, 4294967295u}) {
    const uint64_t w = std::max<uint64_t>(1, 0xFFFFFFFFull / h);
    const uint64_t size = uint64_t(h) * w;
    std::vector<uint64_t> positions;
    for (uint64_t col : {uint64_t(1), w / 2, w - 1}) {
      for (int64_t delta : {-1, 0, 1}) positions.push_back(col * h + delta);
    }
    for (int i = 0; i < 20; ++i) positions.push_back(rng() % size);
    for (uint64_t a : positions) {
      for (uint64_t b : positions) {
        if (a >= b || b > size) continue;
        const Rle rle{h, uint32_t(w), {uint32_t(a), uint32_t(b - a), uint32_t(size - b)}};
        ASSERT_EQ(rle_to_bbox(rle), reference(h, a, b)) << h << " " << a << " " << b;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

TEST(Rle, EmptyMasks) {
  const Rle empty = rle_from_polygon(nullptr, 0, 7, 9);
  EXPECT_EQ(empty.counts, std::vector<uint32_t>{63});
  EXPECT_EQ(rle_to_bbox(empty), (BoxXywh{0, 0, 0, 0}));
  EXPECT_EQ(rle_iou(empty, empty, false), 0);
}

TEST(Rle, MalformedStringsThrowClearErrors) {
  EXPECT_THROW(rle_from_string("0162M0:N", 6, 6), Error);  // runs sum to 30, not 36
  try {
    rle_from_string("01 2", 2, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("position 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(rle_from_string("0162M0:n", 6, 5), Error);  // ends inside a value ('n' & 0x20)
  EXPECT_THROW(rle_from_string("R", 6, 5), Error);         // negative first run
  EXPECT_THROW(rle_decode(Rle{2, 2, {1, 1}}), Error);
  const auto message = [](const std::string& counts) {
    try {
      rle_from_string(counts, 2, 2);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // 'P' is 0 with the continuation bit: twelve 5-bit groups at most.
  EXPECT_NE(message(std::string(12, 'P') + "0").find("value too long"), std::string::npos);
  // Many more than twelve, then one end: decoding must stop, not write past the one value.
  EXPECT_NE(message(std::string(300, 'P') + "0").find("value too long"), std::string::npos);
  // 2^32 (group 6 = 4) and -16 (the sign bit alone) are outside 0..2^32-1.
  EXPECT_NE(message("PPPPPP4").find("run 0 of length 4294967296"), std::string::npos);
  EXPECT_NE(message("@").find("run 0 of length -16"), std::string::npos);
  // A later run is a difference from the run two before it (pycocotools' m > 2).
  EXPECT_NE(message("1121@").find("run 4 of length -14"), std::string::npos);
}

}  // namespace
}  // namespace largedet::evaluation
