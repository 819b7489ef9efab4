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
  LARGEDET_CHECK(labels.dim() == 1 || labels.dim() == 2,
                 "BalancedPositiveNegativeSampler: expected labels [N] or [B, N], got ",
                 labels.sizes());
  const int64_t n = labels.size(-1);
  // One uniform key per example, drawn on the CPU from the seeded generator (so that the picks do
  // not depend on the device) and uploaded without waiting (pinned, non-blocking). The examples
  // with the highest keys among the eligible ones are a uniform random subset, as randperm gives,
  // and the counts stay on the device: nothing is read back.
  const auto keys =
      upload(at::rand(labels.sizes(), generator_, at::kFloat), labels.device(), "sampler keys");
  const auto max_positive = this->max_positive();
  auto positive = labels >= 1, negative = labels == 0;
  auto num_positive = positive.sum(-1, /*keepdim=*/true).clamp_max(max_positive);
  auto num_negative = at::minimum(negative.sum(-1, true), batch_size_ - num_positive);
  auto pick = [&](const at::Tensor& eligible, int64_t most, const at::Tensor& count) {
    auto mask = at::zeros(labels.sizes(), labels.options().dtype(at::kBool));
    const int64_t k = std::min(most, n);
    if (k == 0) return mask;
    auto ranked = std::get<1>(at::where(eligible, keys, -1.0f).topk(k));
    return mask.scatter_(-1, ranked, at::arange(k, ranked.options()).lt(count));
  };
  return {pick(positive, max_positive, num_positive), pick(negative, batch_size_, num_negative)};
}

SampledSlots sampled_slots(const at::Tensor& positive, const at::Tensor& negative, int64_t slots) {
  LARGEDET_CHECK(positive.sizes() == negative.sizes() && positive.dim() >= 1,
                 "sampled_slots: masks of shapes ", positive.sizes(), " and ", negative.sizes());
  const int64_t s = std::min(slots, positive.size(-1));
  // Rank 2 for the picked positives, 1 for the picked negatives: one top-k orders the slots.
  auto rank = positive.to(at::kFloat) * 2 + negative.to(at::kFloat);
  auto [top, index] = rank.topk(s);
  return {index, top >= 2, top >= 1};
}

}  // namespace largedet::ops
