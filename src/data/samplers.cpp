#include "largedet/data/samplers.h"

#include <algorithm>

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
  std::vector<int64_t> order;
  if (shuffle_) {
    order = seeded_permutation(size_, mix_seed(seed_, static_cast<uint64_t>(epoch)));
  } else {
    order.resize(static_cast<size_t>(size_));
    for (int64_t i = 0; i < size_; ++i) order[i] = i;
  }
  const int64_t total = per_rank() * world_;
  std::vector<int64_t> mine;
  mine.reserve(per_rank());
  for (int64_t p = rank_; p < total; p += world_) mine.push_back(order[p % size_]);
  return mine;
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
