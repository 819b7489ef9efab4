#include "largedet/data/loader.h"

#include "largedet/core/error.h"

namespace largedet::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, BatchSampler sampler,
                       LoaderOptions options)
    : dataset_(std::move(dataset)), sampler_(std::move(sampler)), options_(std::move(options)) {
  LARGEDET_CHECK(dataset_ && dataset_->size() > 0, "the loader got an empty dataset");
  options_.prefetch = std::max(1, options_.prefetch);
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { work(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

Sample DataLoader::map_with_fallback(int64_t index, uint64_t seed) {
  const int64_t n = static_cast<int64_t>(dataset_->size());
  BadInputLog& bad = *dataset_->bad_input;
  for (int64_t attempt = 0; attempt < n; ++attempt) {
    const int64_t i = (index + attempt) % n;
    {
      std::lock_guard<std::mutex> lock(bad_mutex_);
      if (bad_records_.count(i)) continue;
    }
    const Record& record = dataset_->records[i];
    const std::string where = detail::concat(record.path, " (image id ", record.image_id, ")");
    std::string bytes;
    if (!read_bytes(record.path, &bytes)) {
      bad.report(BadInput::kMissingImage, "cannot read the image", where);  // strict: throws
    } else {
      try {
        std::optional<Sample> sample =
            map_encoded(record, bytes, options_.mapper, seed, bad, where);
        if (sample) {
          sample->record_index = i;
          return std::move(*sample);
        }
      } catch (const Error& e) {
        bad.report(BadInput::kCorruptImage, e.message(), where);  // strict: throws
      } catch (const std::exception& e) {
        bad.report(BadInput::kCorruptImage, e.what(), where);
      }
    }
    std::lock_guard<std::mutex> lock(bad_mutex_);
    bad_records_.insert(i);
  }
  throw Error("no image of the dataset could be read", dataset_->name,
              "check the image directory (DATASETS.*_IMAGES)");
}

Batch DataLoader::build(const BatchIndices& b) {
  std::vector<Sample> samples;
  samples.reserve(b.indices.size());
  for (size_t j = 0; j < b.indices.size(); ++j) {
    const uint64_t seed = mix_seed(mix_seed(options_.seed, static_cast<uint64_t>(b.epoch)),
                                   mix_seed(static_cast<uint64_t>(b.number), j));
    samples.push_back(map_with_fallback(b.indices[j], seed));
  }
  return collate(std::move(samples), options_.collate);
}

void DataLoader::work() {
  for (;;) {
    BatchIndices indices;
    int64_t k = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] {
        return stop_ || (!sampler_done_ && claimed_ < consumed_ + options_.prefetch);
      });
      if (stop_) return;
      indices = sampler_.next();
      if (indices.indices.empty()) {
        sampler_done_ = true;
        ready_cv_.notify_all();
        continue;
      }
      k = claimed_++;
    }
    Slot slot;
    try {
      slot.batch = build(indices);
    } catch (...) {
      slot.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_[k] = std::move(slot);
    }
    ready_cv_.notify_all();
  }
}

std::optional<Batch> DataLoader::next() {
  if (workers_.empty()) {
    BatchIndices indices = sampler_.next();
    if (indices.indices.empty()) return std::nullopt;
    return build(indices);
  }
  Slot slot;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_cv_.wait(
        lock, [&] { return ready_.count(consumed_) || (sampler_done_ && consumed_ >= claimed_); });
    auto it = ready_.find(consumed_);
    if (it == ready_.end()) return std::nullopt;
    slot = std::move(it->second);
    ready_.erase(it);
    ++consumed_;
  }
  work_cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

}  // namespace largedet::data
