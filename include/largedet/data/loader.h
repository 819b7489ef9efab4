// DataLoader: worker threads map and collate whole batches ahead of the training loop, at most
// `prefetch` batches ahead, and hand them out strictly in sampler order.
//
// Determinism: batch k holds the records the sampler chose for it, and each sample's random
// choices come from (seed, epoch, batch number, position), so the batches are identical whatever
// the number of workers. A record that cannot be read or decoded, or whose image is not of its
// annotated size, is reported to the dataset's BadInputLog and replaced by the next readable
// record (index + 1, + 2, ...), so batches keep their size; in strict mode the error reaches the
// caller of next(). Errors in workers never hang or kill the process: they surface from next() in
// batch order.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "largedet/data/batch.h"
#include "largedet/data/mapper.h"
#include "largedet/data/samplers.h"

namespace largedet::data {

struct LoaderOptions {
  int num_workers = 2;  // DATALOADER.NUM_WORKERS; 0 maps in the calling thread
  int prefetch = 4;     // DATALOADER.PREFETCH: batches built ahead of the consumer
  uint64_t seed = 0;    // SEED
  MapperOptions mapper;
  CollateOptions collate;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, BatchSampler sampler, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // The next batch; nullopt when a finite sampler is exhausted.
  std::optional<Batch> next();
  const BadInputLog& bad_input() const { return *dataset_->bad_input; }

  // Builds batch `indices` in the calling thread (what each worker does).
  Batch build(const BatchIndices& indices);

 private:
  void work();
  Sample map_with_fallback(int64_t index, uint64_t seed);

  std::shared_ptr<const Dataset> dataset_;
  BatchSampler sampler_;
  LoaderOptions options_;

  std::mutex mutex_;
  std::condition_variable work_cv_, ready_cv_;
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };
  std::map<int64_t, Slot> ready_;
  int64_t claimed_ = 0;   // batches taken from the sampler
  int64_t consumed_ = 0;  // batches handed out
  bool sampler_done_ = false;
  bool stop_ = false;
  std::vector<std::thread> workers_;

  std::mutex bad_mutex_;
  std::set<int64_t> bad_records_;  // skipped at once after their first failure
};

}  // namespace largedet::data
