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
  const TargetBatch batch(targets);
  // Degenerate boxes are looked for on every image at once, and read back once per step.
  const auto& b = batch.boxes;
  auto degenerate = (b.select(2, 2) <= b.select(2, 0))
                        .logical_or_(b.select(2, 3) <= b.select(2, 1))
                        .logical_and_(batch.valid)
                        .any(1);
  const auto flags = ops::read_to_host(degenerate, "degenerate target boxes");
  const auto flag = flags.accessor<bool, 1>();
  for (int64_t i = 0; i < flags.size(0); ++i)
    LARGEDET_CHECK(!flag[i], "Detector: image ", i,
                   " has a degenerate target box (x2 <= x1 or y2 <= y1)");
  auto features = backbone->forward(images.tensor);
  auto [proposals, losses] = rpn->forward(features, {images.tensor.size(2), images.tensor.size(3)},
                                          images.image_sizes, &batch);
  auto [unused, roi_losses] = roi_heads->forward(features, proposals, images.image_sizes, &batch);
  losses.insert(roi_losses.begin(), roi_losses.end());
  return losses;
}

void GeneralizedRCNNImpl::reseed(uint64_t seed) {
  rpn->sampler =
      random_sampler(options.rpn.batch_size_per_image, options.rpn.positive_fraction, seed);
  roi_heads->sampler = random_sampler(options.roi_heads.batch_size_per_image,
                                      options.roi_heads.positive_fraction, seed + 1);
}

std::vector<DetectorPart> GeneralizedRCNNImpl::parts() {
  std::vector<DetectorPart> out = {
      {"backbone", {backbone->body.ptr()}},
      {"fpn", {backbone->fpn.ptr()}},
      {"rpn", {rpn.ptr()}},
      {"box_head", {roi_heads->box_head, roi_heads->box_predictor.ptr()}}};
  if (roi_heads->mask_head) out.push_back({"mask_head", {roi_heads->mask_head}});
  return out;
}

std::vector<Detections> GeneralizedRCNNImpl::inference(const ImageList& images) {
  auto features = backbone->forward(images.tensor);
  auto proposals =
      rpn->forward(features, {images.tensor.size(2), images.tensor.size(3)}, images.image_sizes)
          .first;
  return roi_heads->forward(features, proposals, images.image_sizes).first;
}

}  // namespace largedet::modeling
