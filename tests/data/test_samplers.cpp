// Samplers: disjoint shards that cover the dataset, equal counts per rank, seeded per-epoch
// shuffles, aspect-ratio grouping, infinite iteration, and repeat factors (LVIS's rule).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "largedet/core/error.h"
#include "largedet/data/samplers.h"

namespace largedet::data {
namespace {

TEST(Samplers, PermutationIsSeededAndComplete) {
  const auto a = seeded_permutation(1000, 7);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(a, seeded_permutation(1000, 7));
  EXPECT_NE(a, seeded_permutation(1000, 8));
}

TEST(Samplers, ShardsAreDisjointCoverTheDatasetAndHaveEqualCounts) {
  for (int64_t n : {1, 7, 10, 100, 101}) {
    for (int world : {1, 2, 3, 4, 8}) {
      for (int64_t epoch : {0, 1, 5}) {
        std::map<int64_t, int> seen;
        size_t count = 0;
        for (int rank = 0; rank < world; ++rank) {
          DistributedSampler s(n, rank, world, true, 123);
          const auto idx = s.epoch_indices(epoch);
          if (rank == 0) count = idx.size();
          ASSERT_EQ(idx.size(), count) << "unequal counts";
          ASSERT_EQ(static_cast<int64_t>(idx.size()), (n + world - 1) / world);
          for (auto i : idx) ++seen[i];
        }
        ASSERT_EQ(static_cast<int64_t>(seen.size()), n) << "not every record covered";
        // Only the padding (count * world - n records) is seen twice.
        int64_t extra = 0;
        for (auto& [i, c] : seen) extra += c - 1;
        ASSERT_EQ(extra, static_cast<int64_t>(count) * world - n) << n << " " << world;
      }
    }
  }
}

TEST(Samplers, InferenceShardsReadEveryRecordExactlyOnce) {
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 4; ++rank) {  // 5 batches of 2 over 4 ranks: 2, 1, 1, 1
    const auto idx = DistributedSampler::for_inference(10, rank, 4, 2).epoch_indices(0);
    EXPECT_EQ(idx.size(), rank < 1 ? 4u : 2u);
    seen.insert(idx.begin(), idx.end());
  }
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 10u);
  EXPECT_TRUE(DistributedSampler::for_inference(3, 3, 4, 2).epoch_indices(0).empty());
}

TEST(Samplers, EpochsShuffleDifferentlyAndReproducibly) {
  DistributedSampler s(50, 1, 2, true, 9);
  EXPECT_EQ(s.epoch_indices(3), DistributedSampler(50, 1, 2, true, 9).epoch_indices(3));
  EXPECT_NE(s.epoch_indices(3), s.epoch_indices(4));
  DistributedSampler ordered(5, 0, 1, false);
  EXPECT_EQ(ordered.epoch_indices(2), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

Dataset dataset_with_orientations(const std::vector<bool>& landscape) {
  Dataset d;
  for (bool l : landscape) {
    Record r;
    r.width = l ? 200 : 100;
    r.height = l ? 100 : 200;
    d.records.push_back(r);
  }
  return d;
}

// Batched inference pads a batch to its largest member, so its detections depend on which images
// share a batch: every world size must form the same batches (1- and 2-process evaluation of the
// same weights once differed in the fourth digit of AP).
TEST(Samplers, InferenceBatchesAreTheSameForEveryWorldSize) {
  std::vector<bool> landscape;  // orientations mixed: inference batches ignore them
  for (int i = 0; i < 23; ++i) landscape.push_back(i % 3 == 0);
  const Dataset d = dataset_with_orientations(landscape);
  BatchSamplerOptions o;
  o.batch_size = 3;
  o.aspect_grouping = false;
  std::set<std::vector<int64_t>> reference;
  for (int world : {1, 2, 3, 5, 8, 32}) {
    std::set<std::vector<int64_t>> batches;
    for (int rank = 0; rank < world; ++rank) {
      BatchSampler bs(DistributedSampler::for_inference(23, rank, world, 3), d, o);
      for (auto b = bs.next(); !b.indices.empty(); b = bs.next()) batches.insert(b.indices);
    }
    if (world == 1) reference = batches;
    EXPECT_EQ(batches, reference) << "world size " << world;
  }
  EXPECT_EQ(reference.size(), 8u);
}

TEST(Samplers, AspectRatioGroupingNeverMixesOrientations) {
  std::vector<bool> landscape;
  for (int i = 0; i < 37; ++i) landscape.push_back(i % 3 != 0);
  const Dataset d = dataset_with_orientations(landscape);
  BatchSamplerOptions o;
  o.batch_size = 4;
  o.infinite = true;
  BatchSampler bs(DistributedSampler(37, 0, 1, true, 1), d, o);
  for (int k = 0; k < 50; ++k) {
    const auto b = bs.next();
    ASSERT_EQ(b.indices.size(), 4u);
    EXPECT_EQ(b.number, k);
    for (auto i : b.indices) EXPECT_EQ(landscape[i], landscape[b.indices[0]]);
  }
  EXPECT_GT(bs.epoch(), 3);  // it went on across epochs
}

TEST(Samplers, FiniteEpochEmitsEveryIndexOnceThenStops) {
  std::vector<bool> landscape;
  for (int i = 0; i < 23; ++i) landscape.push_back(i % 2 == 0);
  const Dataset d = dataset_with_orientations(landscape);
  for (bool grouping : {false, true}) {
    BatchSamplerOptions o;
    o.batch_size = 5;
    o.aspect_grouping = grouping;
    BatchSampler bs(DistributedSampler(23, 0, 1, true, 3), d, o, 2);
    std::multiset<int64_t> seen;
    for (;;) {
      const auto b = bs.next();
      if (b.indices.empty()) break;
      EXPECT_EQ(b.epoch, 2);
      seen.insert(b.indices.begin(), b.indices.end());
    }
    EXPECT_EQ(seen.size(), 23u);
    EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 23u);
    EXPECT_TRUE(bs.next().indices.empty());
  }
}

TEST(Samplers, DropLastDropsIncompleteBatches) {
  const Dataset d = dataset_with_orientations(std::vector<bool>(10, true));
  BatchSamplerOptions o;
  o.batch_size = 4;
  o.drop_last = true;
  BatchSampler bs(DistributedSampler(10, 0, 1, false), d, o);
  EXPECT_EQ(bs.next().indices.size(), 4u);
  EXPECT_EQ(bs.next().indices.size(), 4u);
  EXPECT_TRUE(bs.next().indices.empty());
}

// Ten records: category 1 in every one, category 2 in one (10 %), category 3 in two (20 %, one of
// them a crowd region), and one record without instances.
Dataset ten_records() {
  Dataset d;
  d.records.resize(11);
  auto add = [&](size_t i, int64_t label, bool crowd = false) {
    Instance inst;
    inst.label = label;
    inst.iscrowd = crowd;
    d.records[i].instances.push_back(inst);
  };
  for (size_t i = 0; i < 10; ++i) add(i, 1);
  add(0, 1);  // twice in one record counts once
  add(3, 2);
  add(5, 3);
  add(6, 3, true);
  return d;
}

TEST(Samplers, RepeatFactorsFollowCategoryFrequencyAsDetectron2) {
  const Dataset d = ten_records();
  // Frequencies over 11 records: 10/11, 1/11, 2/11. Threshold 0.5: sqrt(0.5 * 11 / 1) and
  // sqrt(0.5 * 11 / 2); category 1 and the empty record stay at 1.
  const std::vector<double> f = repeat_factors_from_category_frequency(d, 0.5);
  ASSERT_EQ(f.size(), 11u);
  for (size_t i : {0, 1, 2, 4, 7, 8, 9, 10}) EXPECT_EQ(f[i], 1.0) << i;
  EXPECT_DOUBLE_EQ(f[3], std::sqrt(5.5));
  EXPECT_DOUBLE_EQ(f[5], std::sqrt(2.75));
  EXPECT_DOUBLE_EQ(f[6], std::sqrt(2.75));  // the crowd region counts
  const std::vector<double> linear = repeat_factors_from_category_frequency(d, 0.5, false);
  EXPECT_DOUBLE_EQ(linear[3], 5.5);
  EXPECT_DOUBLE_EQ(linear[5], 2.75);
  EXPECT_EQ(linear[0], 1.0);
  // Threshold 0: nothing repeats.
  for (const double r : repeat_factors_from_category_frequency(d, 0)) EXPECT_EQ(r, 1.0);
}

// Each epoch holds record i floor(r) or ceil(r) times, r on average over epochs; the epoch is
// dealt to the ranks like any other (equal counts, everything covered), and is the same for the
// same seed and epoch.
TEST(Samplers, RepeatEpochsHoldEachRecordItsFactorOnAverage) {
  const std::vector<double> factors = {1, 2.5, 1.25, 3, 1.9};
  std::vector<double> total(factors.size(), 0);
  const int epochs = 4000;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    std::map<int64_t, int64_t> seen;
    size_t count = 0;
    for (int rank = 0; rank < 3; ++rank) {
      DistributedSampler s(5, rank, 3, true, 17);
      s.with_repeat_factors(factors);
      const auto idx = s.epoch_indices(epoch);
      if (rank == 0) count = idx.size();
      ASSERT_EQ(idx.size(), count);
      for (const int64_t i : idx) ++seen[i];
      if (epoch < 3) {
        DistributedSampler again(5, rank, 3, true, 17);
        again.with_repeat_factors(factors);
        EXPECT_EQ(again.epoch_indices(epoch), idx);
      }
    }
    // Dealt to 3 ranks, the epoch is padded by at most 2 records (copies of one record, maybe).
    for (size_t i = 0; i < factors.size(); ++i) {
      const int64_t c = seen[static_cast<int64_t>(i)];
      ASSERT_GE(c, static_cast<int64_t>(std::floor(factors[i]))) << i;
      ASSERT_LE(c, static_cast<int64_t>(std::ceil(factors[i])) + 2) << i;
    }
    // One rank: no padding, each record floor(r) or ceil(r) times.
    DistributedSampler one(5, 0, 1, true, 17);
    one.with_repeat_factors(factors);
    const auto whole = one.epoch_indices(epoch);
    for (size_t i = 0; i < factors.size(); ++i) {
      const auto c = std::count(whole.begin(), whole.end(), static_cast<int64_t>(i));
      ASSERT_TRUE(c == std::floor(factors[i]) || c == std::ceil(factors[i])) << i << " " << c;
      total[i] += static_cast<double>(c);
    }
  }
  for (size_t i = 0; i < factors.size(); ++i) EXPECT_NEAR(total[i] / epochs, factors[i], 0.03) << i;
}

TEST(Samplers, RepeatFactorsThatCannotBeAreRefused) {
  DistributedSampler s(3, 0, 1);
  EXPECT_THROW(s.with_repeat_factors({1, 0.5, 1}), Error);
  EXPECT_THROW(s.with_repeat_factors({1, std::numeric_limits<double>::quiet_NaN(), 1}), Error);
  EXPECT_THROW(s.with_repeat_factors({1, 2}), Error);
  try {
    s.with_repeat_factors({1, 1e9, 1});
    FAIL() << "an epoch of a billion images was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("REPEAT_THRESHOLD"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DistributedSampler::for_inference(3, 0, 1, 1).with_repeat_factors({1, 1, 1}), Error);
  EXPECT_THROW(repeat_factors_from_category_frequency(ten_records(), -1), Error);
}

TEST(Samplers, RejectsBadRanks) {
  EXPECT_ANY_THROW(DistributedSampler(10, 2, 2));
  EXPECT_ANY_THROW(DistributedSampler(0, 0, 1));
}

}  // namespace
}  // namespace largedet::data
