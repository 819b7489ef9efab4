// BalancedPositiveNegativeSampler: picks at most batch_size_per_image examples per image, at most
// positive_fraction of them positive, uniformly at random (torchvision's det_utils sampler).
// The draws come from the sampler's own seeded CPU generator, so runs repeat exactly and the same
// examples are picked whether the labels live on the CPU or on a GPU; nothing is read back from
// the device (random keys and top-k, docs/modeling.md "Host synchronisations").
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

namespace largedet::ops {

class BalancedPositiveNegativeSampler {
 public:
  BalancedPositiveNegativeSampler(int64_t batch_size_per_image, double positive_fraction,
                                  uint64_t seed = 0);

  // labels: [N] per image, >= 1 positive, 0 negative, < 0 ignored, or [B, N] for B images at
  // once (each row sampled on its own). Returns (positive, negative) bool masks of the labels'
  // shape, on their device.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& labels);

  void reseed(uint64_t seed);
  int64_t batch_size_per_image() const { return batch_size_; }
  double positive_fraction() const { return positive_fraction_; }
  // torchvision's int(batch_size * fraction) positives at most per image, the rest negatives.
  int64_t max_positive() const {
    return static_cast<int64_t>(static_cast<double>(batch_size_) * positive_fraction_);
  }

 private:
  int64_t batch_size_;
  double positive_fraction_;
  at::Generator generator_;
};

// A sampler's picks as fixed slots, so that what follows has shapes that do not depend on the
// labels: positive and negative masks [..., N] (as a sampler returns them) give [..., S] indices
// into the last dimension, the picked positives first, then the picked negatives, then unused
// slots (S >= the picks per row: the sampler's batch size, or N if smaller).
struct SampledSlots {
  at::Tensor index;     // [..., S] int64
  at::Tensor positive;  // [..., S] bool: the slot holds a picked positive
  at::Tensor sampled;   // [..., S] bool: the slot holds a picked positive or negative
};
SampledSlots sampled_slots(const at::Tensor& positive, const at::Tensor& negative, int64_t slots);

}  // namespace largedet::ops
