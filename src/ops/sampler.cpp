#include "largedet/ops/sampler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <mutex>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"

namespace largedet::ops {

BalancedPositiveNegativeSampler::BalancedPositiveNegativeSampler(int64_t batch_size_per_image,
                                                                 double positive_fraction,
                                                                 uint64_t seed)
    : batch_size_(batch_size_per_image),
      positive_fraction_(positive_fraction),
      generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  LARGEDET_CHECK(batch_size_per_image >= 0, "BalancedPositiveNegativeSampler: batch size ",
                 batch_size_per_image, " < 0");
  LARGEDET_CHECK(positive_fraction >= 0 && positive_fraction <= 1,
                 "BalancedPositiveNegativeSampler: positive fraction ", positive_fraction,
                 " outside [0, 1]");
}

void BalancedPositiveNegativeSampler::reseed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(generator_.mutex());
  generator_.set_current_seed(seed);
}

std::pair<at::Tensor, at::Tensor> BalancedPositiveNegativeSampler::operator()(
    const at::Tensor& labels) {
  LARGEDET_CHECK(labels.dim() == 1, "BalancedPositiveNegativeSampler: expected labels [N], got ",
                 labels.sizes());
  auto cpu = read_to_host(labels, "sampler labels");
  auto positive = at::nonzero(cpu >= 1).view(-1);
  auto negative = at::nonzero(cpu == 0).view(-1);
  // torchvision: int(batch_size * fraction) positives at most, the rest negatives.
  int64_t num_pos =
      std::min(positive.numel(),
               static_cast<int64_t>(static_cast<double>(batch_size_) * positive_fraction_));
  int64_t num_neg = std::min(negative.numel(), batch_size_ - num_pos);
  // randperm takes the generator's lock itself.
  auto perm_pos = at::randperm(positive.numel(), generator_, at::kLong).narrow(0, 0, num_pos);
  auto perm_neg = at::randperm(negative.numel(), generator_, at::kLong).narrow(0, 0, num_neg);
  auto pos_mask = at::zeros({labels.size(0)}, at::kBool);
  auto neg_mask = at::zeros({labels.size(0)}, at::kBool);
  pos_mask.index_fill_(0, positive.index_select(0, perm_pos), true);
  neg_mask.index_fill_(0, negative.index_select(0, perm_neg), true);
  return {pos_mask.to(labels.device()), neg_mask.to(labels.device())};
}

std::pair<std::vector<at::Tensor>, std::vector<at::Tensor>>
BalancedPositiveNegativeSampler::operator()(const std::vector<at::Tensor>& labels_per_image) {
  std::vector<at::Tensor> pos, neg;
  for (const auto& labels : labels_per_image) {
    auto [p, n] = (*this)(labels);
    pos.push_back(std::move(p));
    neg.push_back(std::move(n));
  }
  return {pos, neg};
}

}  // namespace largedet::ops
