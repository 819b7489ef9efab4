// Samplers: which records each rank reads, in which order, grouped into which batches.
//
// Every choice is a pure function of (seed, epoch, rank, world size): no global RNG, no thread
// timing, and a shuffle of our own (Fisher-Yates on splitmix64) so that the order is the same with
// every standard library.
#pragma once

#include <cstdint>
#include <vector>

#include "largedet/data/records.h"

namespace largedet::data {

// A permutation of 0..n-1 decided by `seed` alone.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// Shards an epoch over ranks: the (seeded, per-epoch) permutation is padded by wrapping around to
// a multiple of world_size, and rank r takes positions r, r + world, r + 2 world, ... So every rank
// gets the same count (ceil(n / world)), shards are disjoint up to the padding, and together they
// cover every record each epoch.
class DistributedSampler {
 public:
  DistributedSampler(int64_t size, int rank = 0, int world_size = 1, bool shuffle = true,
                     uint64_t seed = 0);
  // Evaluation: the records in order, cut into batches of batch_size, each rank taking a
  // contiguous run of whole batches (the first ranks one more where they do not divide). Every
  // world size thus forms the same batches, and batched inference, whose padding depends on a
  // batch's members, detects the same in one process as in 32 (docs/evaluation.md). No record is
  // read twice; a rank may get none.
  static DistributedSampler for_inference(int64_t size, int rank, int world_size,
                                          int64_t batch_size);
  // Training with repeat factors (detectron2's RepeatFactorTrainingSampler): each epoch record i
  // appears floor(r_i) times, once more with probability r_i - floor(r_i) (decided by the seed and
  // the epoch), the whole shuffled, then padded and dealt to the ranks as above. One factor >= 1
  // per record.
  DistributedSampler& with_repeat_factors(std::vector<double> factors);
  std::vector<int64_t> epoch_indices(int64_t epoch) const;
  int64_t size() const { return size_; }

 private:
  // The epoch's records in the order they are dealt out, before padding.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  int64_t size_;
  int rank_, world_;
  bool shuffle_;
  uint64_t seed_;
  int64_t inference_batch_ = 0;  // > 0: for_inference's contiguous whole batches
  std::vector<double> repeat_factors_;
};

// detectron2's repeat_factors_from_category_frequency (LVIS, Gupta et al. 2019): f(c) is the
// fraction of records with an instance of category c (crowd and group-of instances count), a
// category's factor max(1, sqrt(threshold / f(c))) (threshold / f(c) when !sqrt), and a record's
// the largest of its categories' (1 for a record without instances).
std::vector<double> repeat_factors_from_category_frequency(const Dataset& dataset, double threshold,
                                                           bool sqrt = true);

struct BatchSamplerOptions {
  int64_t batch_size = 2;       // images per rank and iteration (SOLVER.IMS_PER_DEVICE)
  bool aspect_grouping = true;  // DATALOADER.ASPECT_RATIO_GROUPING: landscape and portrait apart
  bool infinite = false;        // iteration-based training: epochs follow each other forever
  bool drop_last = false;       // finite mode: drop the last incomplete batch(es)
};

struct BatchIndices {
  std::vector<int64_t> indices;  // positions in Dataset::records
  int64_t epoch = 0;             // the epoch the batch completed in
  int64_t number = 0;            // batches emitted before this one (since the start)
};

// Groups a rank's index stream into batches. Aspect-ratio grouping (as detectron2) keeps one
// bucket per orientation (width >= height, or not) and emits a bucket when it is full; in infinite
// mode buckets carry over epoch boundaries, in finite mode the remainders are emitted at the end.
class BatchSampler {
 public:
  BatchSampler(DistributedSampler sampler, const Dataset& dataset, BatchSamplerOptions options,
               int64_t start_epoch = 0);
  // The next batch; empty indices when a finite epoch is over.
  BatchIndices next();
  int64_t epoch() const { return epoch_; }

 private:
  void refill();

  DistributedSampler sampler_;
  std::vector<uint8_t> landscape_;
  BatchSamplerOptions options_;
  int64_t epoch_;
  std::vector<int64_t> stream_;
  size_t position_ = 0;
  bool exhausted_ = false;
  int64_t emitted_ = 0;
  std::vector<int64_t> buckets_[2];
};

}  // namespace largedet::data
