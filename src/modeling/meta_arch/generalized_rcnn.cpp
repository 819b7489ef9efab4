// GeneralizedRCNN (see meta_arch/generalized_rcnn.h).
#include "largedet/modeling/meta_arch/generalized_rcnn.h"

#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"

namespace largedet::modeling {

GeneralizedRCNNImpl::GeneralizedRCNNImpl(RCNNOptions opts) : options(std::move(opts)) {
  transform.options = options.transform;
  backbone = register_module("backbone", BackboneWithFPN(options.backbone, options.fpn_channels,
                                                         options.fpn_norm, FPNExtra::kMaxPool));
  rpn = register_module("rpn",
                        RegionProposalNetwork(options.fpn_channels, options.rpn, options.seed));
  roi_heads = register_module("roi_heads",
                              RoIHeads(options.fpn_channels, options.roi_heads, options.seed + 1));
}

LossMap GeneralizedRCNNImpl::losses(const ImageList& images, const std::vector<Target>& targets) {
  LARGEDET_CHECK(is_training(), "Detector::losses needs training mode (call train())");
  LARGEDET_CHECK(targets.size() == images.image_sizes.size(), "Detector: ", targets.size(),
                 " targets for ", images.image_sizes.size(), " images");
  // Degenerate boxes are looked for on every image at once, and read back once per step.
  std::vector<torch::Tensor> degenerate;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& b = targets[i].boxes;
    LARGEDET_CHECK(b.dim() == 2 && b.size(1) == 4, "Detector: image ", i,
                   " target boxes are not [N, 4]: ", b.sizes());
    degenerate.push_back(
        (b.select(1, 2) <= b.select(1, 0)).logical_or(b.select(1, 3) <= b.select(1, 1)).any());
  }
  if (!degenerate.empty()) {
    const auto flags = ops::read_to_host(torch::stack(degenerate), "degenerate target boxes");
    const auto flag = flags.accessor<bool, 1>();
    for (size_t i = 0; i < degenerate.size(); ++i) {
      LARGEDET_CHECK(!flag[static_cast<int64_t>(i)], "Detector: image ", i,
                     " has a degenerate target box (x2 <= x1 or y2 <= y1)");
    }
  }
  auto features = backbone->forward(images.tensor);
  auto [proposals, losses] = rpn->forward(features, {images.tensor.size(2), images.tensor.size(3)},
                                          images.image_sizes, &targets);
  auto [unused, roi_losses] = roi_heads->forward(features, proposals, images.image_sizes, &targets);
  losses.insert(roi_losses.begin(), roi_losses.end());
  return losses;
}

void GeneralizedRCNNImpl::reseed(uint64_t seed) {
  rpn->sampler =
      random_sampler(options.rpn.batch_size_per_image, options.rpn.positive_fraction, seed);
  roi_heads->sampler = random_sampler(options.roi_heads.batch_size_per_image,
                                      options.roi_heads.positive_fraction, seed + 1);
}

std::vector<Detections> GeneralizedRCNNImpl::inference(const ImageList& images) {
  auto features = backbone->forward(images.tensor);
  auto proposals =
      rpn->forward(features, {images.tensor.size(2), images.tensor.size(3)}, images.image_sizes)
          .first;
  return roi_heads->forward(features, proposals, images.image_sizes).first;
}

}  // namespace largedet::modeling
