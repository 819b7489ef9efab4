// GeneralizedRCNN: Faster / Mask R-CNN on a ResNet-FPN (detectron2's meta_arch/rcnn.py), with
// torchvision's module tree so that its checkpoints load by name.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <string>
#include <vector>

#include "largedet/modeling/backbone/fpn.h"
#include "largedet/modeling/backbone/resnet.h"
#include "largedet/modeling/meta_arch/detector.h"
#include "largedet/modeling/proposal_generator/rpn.h"
#include "largedet/modeling/roi_heads/roi_heads.h"
#include "largedet/modeling/transform.h"

namespace largedet::modeling {

struct RCNNOptions {
  ResNetOptions backbone;
  int64_t fpn_channels = 256;
  std::string fpn_norm;
  RPNOptions rpn;
  RoIHeadsOptions roi_heads;
  TransformOptions transform;
  uint64_t seed = 0;  // of the samplers
};

// Faster R-CNN (mask_on false) or Mask R-CNN, ResNet-FPN; torchvision's module tree:
// backbone.body, backbone.fpn, rpn.head, roi_heads.{box_head, box_predictor, mask_head,
// mask_predictor}.
struct GeneralizedRCNNImpl : DetectorImpl {
  explicit GeneralizedRCNNImpl(RCNNOptions options);
  LossMap losses(const ImageList& images, const std::vector<Target>& targets) override;
  std::vector<Detections> inference(const ImageList& images) override;
  void reseed(uint64_t seed) override;
  // backbone, fpn, rpn, box_head (box head and predictor), mask_head (Mask R-CNN).
  std::vector<DetectorPart> parts() override;
  using DetectorImpl::losses;

  RCNNOptions options;
  BackboneWithFPN backbone{nullptr};
  RegionProposalNetwork rpn{nullptr};
  RoIHeads roi_heads{nullptr};
};
TORCH_MODULE(GeneralizedRCNN);

}  // namespace largedet::modeling
