// BalancedPositiveNegativeSampler: picks at most batch_size_per_image examples per image, at most
// positive_fraction of them positive, uniformly at random (torchvision's det_utils sampler).
// The draws come from the sampler's own seeded CPU generator, so runs repeat exactly and the same
// examples are picked whether the labels live on the CPU or on a GPU; nothing is read back from
// the device (random keys and top-k, docs/modeling.md "Host synchronisations").
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace largedet::ops {

class BalancedPositiveNegativeSampler {
 public:
  BalancedPositiveNegativeSampler(int64_t batch_size_per_image, double positive_fraction,
                                  uint64_t seed = 0);

  // labels: [N] per image, >= 1 positive, 0 negative, < 0 ignored. Returns (positive, negative)
  // bool masks [N] on the labels' device.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& labels);
  std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>> operator()(
      const std::vector<at::Tensor>& labels_per_image);

  void reseed(uint64_t seed);
  int64_t batch_size_per_image() const { return batch_size_; }
  double positive_fraction() const { return positive_fraction_; }

 private:
  int64_t batch_size_;
  double positive_fraction_;
  at::Generator generator_;
};

}  // namespace largedet::ops
