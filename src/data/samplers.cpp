#include "largedet/data/samplers.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "largedet/core/error.h"
#include "largedet/data/seed.h"

namespace largedet::data {

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    state = mix_seed(state, static_cast<uint64_t>(i));
    // Multiply-shift bound: unbiased enough for shuffling (bias < 2^-32 for n < 2^32).
    const auto j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(state) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(p[i], p[j]);
  }
  return p;
}

DistributedSampler::DistributedSampler(int64_t size, int rank, int world_size, bool shuffle,
                                       uint64_t seed)
    : size_(size), rank_(rank), world_(world_size), shuffle_(shuffle), seed_(seed) {
  LARGEDET_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "sampler: rank ", rank,
                 " of world size ", world_size);
  LARGEDET_CHECK(size > 0, "sampler: the dataset is empty",
                 " (were all images filtered out? see DATALOADER.FILTER_EMPTY_ANNOTATIONS)");
}

DistributedSampler DistributedSampler::for_inference(int64_t size, int rank, int world_size,
                                                     int64_t batch_size) {
  LARGEDET_CHECK(batch_size >= 1, "sampler: batch size ", batch_size);
  DistributedSampler sampler(size, rank, world_size, false, 0);
  sampler.inference_batch_ = batch_size;
  return sampler;
}

std::vector<int64_t> DistributedSampler::epoch_indices(int64_t epoch) const {
  if (inference_batch_ > 0) {
    const int64_t batches = (size_ + inference_batch_ - 1) / inference_batch_;
    const int64_t base = batches / world_, extra = batches % world_;
    const int64_t first = rank_ * base + std::min<int64_t>(rank_, extra);
    const int64_t count = base + (rank_ < extra ? 1 : 0);
    std::vector<int64_t> mine;
    for (int64_t i = first * inference_batch_;
         i < std::min(size_, (first + count) * inference_batch_); ++i)
      mine.push_back(i);
    return mine;
  }
  const std::vector<int64_t> order = epoch_order(epoch);
  const auto n = static_cast<int64_t>(order.size());
  const int64_t per_rank = (n + world_ - 1) / world_;
  std::vector<int64_t> mine;
  mine.reserve(per_rank);
  for (int64_t p = rank_; p < per_rank * world_; p += world_) mine.push_back(order[p % n]);
  return mine;
}

std::vector<int64_t> DistributedSampler::epoch_order(int64_t epoch) const {
  const uint64_t epoch_seed = mix_seed(seed_, static_cast<uint64_t>(epoch));
  std::vector<int64_t> records;
  if (repeat_factors_.empty()) {
    records.resize(static_cast<size_t>(size_));
    for (int64_t i = 0; i < size_; ++i) records[i] = i;
  } else {
    // Stochastic rounding, a draw per record from the epoch's own stream.
    const uint64_t rounding = mix_seed(epoch_seed, 0x5245504541540000ull);  // "REPEAT"
    for (int64_t i = 0; i < size_; ++i) {
      const double r = repeat_factors_[i];
      const double whole = std::floor(r);
      const double u = uniform01(mix_seed(rounding, static_cast<uint64_t>(i)));
      const auto times = static_cast<int64_t>(whole) + (u < r - whole ? 1 : 0);
      for (int64_t k = 0; k < times; ++k) records.push_back(i);
    }
  }
  if (!shuffle_) return records;
  const std::vector<int64_t> permutation =
      seeded_permutation(static_cast<int64_t>(records.size()), epoch_seed);
  std::vector<int64_t> order(records.size());
  for (size_t p = 0; p < order.size(); ++p) order[p] = records[permutation[p]];
  return order;
}

namespace {

constexpr double kMostRepeatedImages = 1 << 24;

}  // namespace

DistributedSampler& DistributedSampler::with_repeat_factors(std::vector<double> factors) {
  LARGEDET_CHECK(inference_batch_ == 0, "sampler: repeat factors are for training");
  LARGEDET_CHECK(static_cast<int64_t>(factors.size()) == size_, "sampler: ", factors.size(),
                 " repeat factors for ", size_, " records");
  double images = 0;
  for (const double r : factors) {
    LARGEDET_CHECK(std::isfinite(r) && r >= 1, "sampler: repeat factor ", r, " (each >= 1)");
    images += r;
  }
  // Each epoch's list is held whole: bound it (an epoch 8x OpenImages' 1.7M images fits).
  if (images > kMostRepeatedImages) {
    throw Error(
        detail::concat("the repeat factors make an epoch of about ", int64_t(images),
                       " images from ", size_, ", more than ", int64_t(kMostRepeatedImages)),
        "DATALOADER.REPEAT_THRESHOLD",
        "lower the threshold (LVIS uses 0.001) or keep DATALOADER.REPEAT_SQRT true");
  }
  repeat_factors_ = std::move(factors);
  return *this;
}

std::vector<double> repeat_factors_from_category_frequency(const Dataset& dataset, double threshold,
                                                           bool sqrt) {
  LARGEDET_CHECK(std::isfinite(threshold) && threshold >= 0, "repeat threshold ", threshold);
  const size_t n = dataset.records.size();
  // The categories of each record, once each.
  std::vector<std::vector<int64_t>> categories(n);
  std::map<int64_t, int64_t> records_with;
  for (size_t i = 0; i < n; ++i) {
    for (const Instance& inst : dataset.records[i].instances) categories[i].push_back(inst.label);
    std::sort(categories[i].begin(), categories[i].end());
    categories[i].erase(std::unique(categories[i].begin(), categories[i].end()),
                        categories[i].end());
    for (const int64_t c : categories[i]) ++records_with[c];
  }
  std::map<int64_t, double> category_factor;
  for (const auto& [c, count] : records_with) {
    const double ratio = threshold / (static_cast<double>(count) / static_cast<double>(n));
    category_factor[c] = std::max(1.0, sqrt ? std::sqrt(ratio) : ratio);
  }
  std::vector<double> factors(n, 1.0);
  for (size_t i = 0; i < n; ++i)
    for (const int64_t c : categories[i]) factors[i] = std::max(factors[i], category_factor[c]);
  return factors;
}

BatchSampler::BatchSampler(DistributedSampler sampler, const Dataset& dataset,
                           BatchSamplerOptions options, int64_t start_epoch)
    : sampler_(sampler), options_(options), epoch_(start_epoch) {
  LARGEDET_CHECK(options.batch_size >= 1, "batch size ", options.batch_size, " per rank");
  LARGEDET_CHECK(sampler.size() == static_cast<int64_t>(dataset.size()),
                 "sampler size does not match the dataset");
  landscape_.reserve(dataset.size());
  for (const auto& r : dataset.records) landscape_.push_back(r.width >= r.height);
  stream_ = sampler_.epoch_indices(epoch_);
  LARGEDET_CHECK(!options.infinite || !stream_.empty(), "rank with no records in infinite mode",
                 " (an unpadded sampler over fewer records than ranks)");
}

void BatchSampler::refill() {
  ++epoch_;
  stream_ = sampler_.epoch_indices(epoch_);
  position_ = 0;
}

BatchIndices BatchSampler::next() {
  const size_t B = static_cast<size_t>(options_.batch_size);
  BatchIndices out;
  while (!exhausted_) {
    if (position_ == stream_.size()) {
      if (options_.infinite) {
        refill();
      } else {
        exhausted_ = true;
        break;
      }
    }
    const int64_t index = stream_[position_++];
    auto& bucket = buckets_[options_.aspect_grouping ? landscape_[index] : 0];
    bucket.push_back(index);
    if (bucket.size() == B) {
      out.indices.swap(bucket);
      break;
    }
  }
  if (out.indices.empty() && exhausted_ && !options_.drop_last) {
    // End of a finite epoch: the incomplete buckets, portrait first.
    for (auto& bucket : buckets_) {
      if (!bucket.empty()) {
        out.indices.swap(bucket);
        break;
      }
    }
  }
  if (out.indices.empty()) return out;
  out.epoch = epoch_;
  out.number = emitted_++;
  return out;
}

}  // namespace largedet::data
