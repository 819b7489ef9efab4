// AnchorGenerator (against its formula and torchvision's AnchorGenerator), Matcher and
// BalancedPositiveNegativeSampler (against references written here).
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/ops/anchor_generator.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/matcher.h"
#include "largedet/ops/sampler.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

TEST(AnchorGenerator, CellAnchorsFollowSizesAndRatios) {
  AnchorGenerator gen({{32, 64}}, {{0.5, 1.0, 2.0}});
  EXPECT_EQ(gen.num_anchors_per_location(0), 6);
  auto cell = gen.cell_anchors(0, at::kDouble);
  ASSERT_EQ(cell.sizes(), (std::vector<int64_t>{6, 4}));
  int k = 0;
  for (double ratio : {0.5, 1.0, 2.0})
    for (double size : {32.0, 64.0}) {
      // height / width = ratio, area = size^2, centred on 0, rounded.
      const double w = size / std::sqrt(ratio), h = size * std::sqrt(ratio);
      const double ref[4] = {std::round(-w / 2), std::round(-h / 2), std::round(w / 2),
                             std::round(h / 2)};
      for (int c = 0; c < 4; ++c) EXPECT_DOUBLE_EQ(cell[k][c].item<double>(), ref[c]) << k;
      ++k;
    }
}

TEST(AnchorGenerator, GridOrderIsRowMajorThenCellAnchors) {
  AnchorGenerator gen({{16}, {32}}, {{0.5, 1.0, 2.0}});
  auto anchors = gen({64, 96}, {{4, 6}, {2, 3}});
  ASSERT_EQ(anchors.sizes(), (std::vector<int64_t>{4 * 6 * 3 + 2 * 3 * 3, 4}));
  for (int64_t level = 0, offset = 0; level < 2; ++level) {
    const int64_t gh = level == 0 ? 4 : 2, gw = level == 0 ? 6 : 3, stride = 16 << level;
    auto cell = gen.cell_anchors(level);
    for (int64_t y = 0; y < gh; ++y)
      for (int64_t x = 0; x < gw; ++x)
        for (int64_t a = 0; a < 3; ++a) {
          auto shift = at::tensor(
              {float(x * stride), float(y * stride), float(x * stride), float(y * stride)});
          ASSERT_TRUE(at::equal(anchors[offset++], cell[a] + shift))
              << level << " " << y << " " << x;
        }
  }
  EXPECT_THROW(gen({64, 96}, {{4, 6}}), Error);
  EXPECT_THROW(AnchorGenerator({{16}, {32}}, {{1.0}, {1.0}, {1.0}}), Error);
}

// Multi-scale training pads batches to more sizes than the cache holds: the least recently used
// set is dropped, not every set, and a new set sends nothing from the host.
TEST(AnchorGenerator, CacheKeepsTheRecentlyUsedSetsAndMissesSendNothing) {
  AnchorGenerator gen({{16}}, {{0.5, 1.0, 2.0}});
  const auto set = [&](int64_t k) { return gen({16 * k, 16}, {{k, 1}}); };
  std::vector<at::Tensor> made;
  for (int64_t k = 1; k <= 64; ++k) made.push_back(set(k));  // 64 sets: the cache is full
  EXPECT_TRUE(set(1).is_same(made[0]));                      // a hit, and now the most recent
  HostSyncProfiler profiler;
  (void)set(65);  // a miss: drops set 2, now the least recently used
  EXPECT_EQ(profiler.counts().uploads, 0);
  EXPECT_EQ(profiler.counts().syncs, 0);
  EXPECT_TRUE(set(1).is_same(made[0]));
  EXPECT_TRUE(set(64).is_same(made[63]));
  const auto again = set(2);
  EXPECT_FALSE(again.is_same(made[1]));  // made again, equal to what it was
  EXPECT_TRUE(at::equal(again, made[1]));
  EXPECT_TRUE(at::equal(again, gen.grid_anchors({{2, 1}}, {{16, 16}})));
}

// Anchors equal torchvision's AnchorGenerator (same values, same order).
TEST(AnchorGenerator, MatchesTorchvision) {
  struct Case {
    std::vector<std::vector<double>> sizes, ratios;
    std::pair<int64_t, int64_t> image;
    std::vector<std::pair<int64_t, int64_t>> grids;
  };
  const std::vector<Case> cases = {
      {{{32}, {64}, {128}, {256}, {512}},
       {{0.5, 1.0, 2.0}},
       {800, 1088},
       {{200, 272}, {100, 136}, {50, 68}, {25, 34}, {13, 17}}},
      {{{128, 256, 512}}, {{0.5, 1.0, 2.0}}, {600, 904}, {{38, 57}}},
      {{{24, 40}, {48, 80}}, {{0.25, 0.7}, {1.3, 3.0}}, {100, 130}, {{13, 17}, {7, 9}}},
  };
  auto dir = testing::temp_dir("anchors");
  std::ostringstream py;
  py << "import sys, torch\n"
        "from torchvision.models.detection.anchor_utils import AnchorGenerator\n"
        "from torchvision.models.detection.image_list import ImageList\n"
        "d = sys.argv[1]\n"
        "cases = [\n";
  auto list = [](const std::vector<double>& v) {
    std::ostringstream s;
    s << "(";
    for (double x : v) s << x << ",";
    s << ")";
    return s.str();
  };
  for (const auto& c : cases) {
    py << "  ((";
    for (const auto& s : c.sizes) py << list(s) << ",";
    py << "), (";
    auto ratios = c.ratios;
    if (ratios.size() == 1) ratios.resize(c.sizes.size(), ratios[0]);
    for (const auto& r : ratios) py << list(r) << ",";
    py << "), (" << c.image.first << "," << c.image.second << "), [";
    for (auto [h, w] : c.grids) py << "(" << h << "," << w << "),";
    py << "]),\n";
  }
  py << "]\n"
        "for i, (sizes, ratios, (H, W), grids) in enumerate(cases):\n"
        "    gen = AnchorGenerator(sizes, ratios)\n"
        "    images = ImageList(torch.zeros(2, 3, H, W), [(H, W), (H - 10, W - 20)])\n"
        "    feats = [torch.zeros(2, 1, h, w) for h, w in grids]\n"
        "    gen(images, feats)[1].numpy().tofile(f'{d}/anchors_{i}.f32')\n";
  const int rc = testing::run_python(dir, py.str());
  if (rc < 0) GTEST_SKIP() << "no Python with torchvision at " << LARGEDET_PYTHON;
  ASSERT_EQ(rc, 0) << "the torchvision script failed";
  for (size_t i = 0; i < cases.size(); ++i) {
    AnchorGenerator gen(cases[i].sizes, cases[i].ratios);
    auto ours = gen(cases[i].image, cases[i].grids);
    auto theirs = testing::read_f32(dir / ("anchors_" + std::to_string(i) + ".f32"));
    ASSERT_TRUE(theirs.defined());
    ASSERT_EQ(theirs.numel(), ours.numel()) << "case " << i;
    EXPECT_TRUE(at::equal(ours.view(-1), theirs)) << "case " << i;
  }
  std::filesystem::remove_all(dir);
}

// Matcher reference in plain loops: first maximum wins ties, as torch.max does.
at::Tensor reference_match(const at::Tensor& q, double high, double low, bool low_quality) {
  auto a = q.to(at::kDouble).contiguous();
  const int64_t m = a.size(0), n = a.size(1);
  auto acc = a.accessor<double, 2>();
  std::vector<int64_t> best(n), out(n);
  for (int64_t j = 0; j < n; ++j) {
    int64_t arg = 0;
    for (int64_t i = 1; i < m; ++i)
      if (acc[i][j] > acc[arg][j]) arg = i;
    best[j] = arg;
    const double v = acc[arg][j];
    out[j] = v < low ? -1 : (v < high ? -2 : arg);
  }
  if (low_quality) {
    for (int64_t i = 0; i < m; ++i) {
      double hi = 0;
      for (int64_t j = 0; j < n; ++j) hi = std::max(hi, acc[i][j]);
      if (hi <= 0) continue;
      for (int64_t j = 0; j < n; ++j)
        if (acc[i][j] == hi) out[j] = best[j];
    }
  }
  return at::tensor(out, at::kLong);
}

TEST(Matcher, MatchesReferenceOnRandomBoxes) {
  at::manual_seed(4);
  for (bool low_quality : {false, true}) {
    for (auto [high, low] : {std::pair{0.7, 0.3}, std::pair{0.5, 0.5}}) {
      auto gt = testing::random_boxes(7, 200, 200, 10, 90);
      auto anchors = testing::random_boxes(300, 200, 200, 5, 100);
      auto q = box_iou(gt, anchors);
      Matcher matcher(high, low, low_quality);
      auto ours = matcher(q);
      EXPECT_TRUE(at::equal(ours, reference_match(q, high, low, low_quality)))
          << "high " << high << " low " << low << " low_quality " << low_quality;
      if (high == low) EXPECT_FALSE((ours == Matcher::kBetweenThresholds).any().item<bool>());
    }
  }
}

TEST(Matcher, LowQualityMatchesKeepTiesAndIgnoreNonOverlappingGroundTruth) {
  // gt 0 overlaps predictions 0 and 2 equally (0.25) and is their best; gt 1 overlaps nothing.
  auto q = at::tensor({0.25f, 0.1f, 0.25f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f}).view({2, 4});
  Matcher matcher(0.7, 0.3, true);
  EXPECT_TRUE(at::equal(matcher(q), at::tensor({0, -1, 0, -1}, at::kLong))) << matcher(q);
  Matcher strict(0.7, 0.3, false);
  EXPECT_TRUE(at::equal(strict(q), at::tensor({-1, -1, -1, -1}, at::kLong)));
}

TEST(Matcher, EmptyGroundTruthOrPredictions) {
  Matcher matcher(0.7, 0.3, true);
  EXPECT_TRUE(at::equal(matcher(at::zeros({0, 5})), at::full({5}, -1, at::kLong)));
  EXPECT_EQ(matcher(at::zeros({3, 0})).numel(), 0);
  EXPECT_THROW(Matcher(0.3, 0.7), Error);
  EXPECT_THROW(matcher(at::zeros({3})), Error);
}

TEST(Sampler, RespectsBudgetAndFractionAndPicksValidIndices) {
  BalancedPositiveNegativeSampler sampler(64, 0.25, /*seed=*/7);
  at::manual_seed(5);
  // 40 positives, 300 negatives, 60 ignored.
  auto labels = at::cat({at::randint(1, 5, {40}, at::kLong), at::zeros({300}, at::kLong),
                         at::full({60}, -1, at::kLong)});
  labels = labels.index_select(0, at::randperm(400, at::kLong));
  auto [pos, neg] = sampler(labels);
  EXPECT_EQ(pos.sum().item<int64_t>(), 16);
  EXPECT_EQ(neg.sum().item<int64_t>(), 48);
  EXPECT_TRUE((labels.masked_select(pos) >= 1).all().item<bool>());
  EXPECT_TRUE((labels.masked_select(neg) == 0).all().item<bool>());
  // Too few positives: the rest of the budget goes to negatives.
  auto few = at::cat({at::ones({3}, at::kLong), at::zeros({100}, at::kLong)});
  auto [p2, n2] = sampler(few);
  EXPECT_EQ(p2.sum().item<int64_t>(), 3);
  EXPECT_EQ(n2.sum().item<int64_t>(), 61);
  // Too few of both: take all.
  auto tiny = at::tensor({1, 0, -1, 0}, at::kLong);
  auto [p3, n3] = sampler(tiny);
  EXPECT_TRUE(at::equal(p3, at::tensor({1, 0, 0, 0}, at::kLong).to(at::kBool)));
  EXPECT_TRUE(at::equal(n3, at::tensor({0, 1, 0, 1}, at::kLong).to(at::kBool)));
  auto [p4, n4] = sampler(at::zeros({0}, at::kLong));
  EXPECT_EQ(p4.numel() + n4.numel(), 0);
}

TEST(Sampler, SeededDrawsRepeatAndDifferAcrossSeeds) {
  auto labels = at::cat({at::ones({100}, at::kLong), at::zeros({1000}, at::kLong)});
  BalancedPositiveNegativeSampler a(128, 0.25, 11), b(128, 0.25, 11), c(128, 0.25, 12);
  const auto two = at::stack({labels, labels});  // two images
  auto [pa, na] = a(two);
  auto [pb, nb] = b(two);
  auto [pc, nc] = c(two);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(at::equal(pa[i], pb[i]));
    EXPECT_TRUE(at::equal(na[i], nb[i]));
  }
  EXPECT_FALSE(at::equal(na[0], na[1]));  // each image draws its own keys
  EXPECT_FALSE(at::equal(na[0], nc[0]));
  a.reseed(11);
  EXPECT_TRUE(at::equal(a(two).second, nb));
  // Roughly uniform: over many draws every negative gets picked.
  BalancedPositiveNegativeSampler d(512, 0.0, 3);
  auto counts = at::zeros({1100}, at::kLong);
  for (int i = 0; i < 20; ++i) counts += d(labels).second.to(at::kLong);
  EXPECT_EQ(counts.slice(0, 0, 100).sum().item<int64_t>(), 0);
  EXPECT_TRUE((counts.slice(0, 100) > 0).all().item<bool>());
}

}  // namespace
}  // namespace largedet::ops
