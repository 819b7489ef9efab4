// The training-example samplers of the RPN and the ROI heads (detectron2's modeling/sampling.py).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "largedet/ops/sampler.h"

namespace largedet::modeling {

// Picks the training examples of each image from labels [N, K] (a row per image; >= 1 positive,
// 0 negative, < 0 ignored): returns (positive, negative) bool masks [N, K].
using SamplerFn =
    std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& labels)>;

// ops::BalancedPositiveNegativeSampler (random, seeded).
inline SamplerFn random_sampler(int64_t batch_size_per_image, double positive_fraction,
                                uint64_t seed) {
  auto sampler = std::make_shared<ops::BalancedPositiveNegativeSampler>(batch_size_per_image,
                                                                        positive_fraction, seed);
  return [sampler](const torch::Tensor& labels) { return (*sampler)(labels); };
}

}  // namespace largedet::modeling
