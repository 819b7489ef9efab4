// The ROI mask head (detectron2's modeling/roi_heads/mask_head.py), chosen by
// MODEL.ROI_MASK_HEAD.NAME from a registry, and Mask R-CNN's mask loss and inference. Built in:
// MaskRCNNConvUpsampleHead in torchvision's layout (MaskRCNNHeads + MaskRCNNPredictor), so its
// checkpoints load by name.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "largedet/modeling/structures.h"
#include "largedet/modeling/target_batch.h"

namespace largedet::modeling {

// MODEL.ROI_MASK_HEAD.*: what every mask head is built from.
struct MaskHeadOptions {
  MaskHeadOptions(int64_t in_channels, int64_t num_classes)
      : in_channels_(in_channels), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, in_channels);  // of the pooled features
  TORCH_ARG(int64_t, num_classes);  // including background
  TORCH_ARG(int64_t, num_conv) = 4;
  TORCH_ARG(int64_t, conv_dim) = 256;  // the convs' and the upsampling deconv's width
  TORCH_ARG(std::string, norm) = "";   // a make_norm() name for the convs; "" none
};

// A mask head: pooled features [K, C, P, P] to per-class mask logits [K, num_classes, 2P, 2P]
// (the targets are 2P x 2P). Its children are registered in the ROI heads under their own names
// (the built-in's: mask_head and mask_predictor, torchvision's).
struct MaskHeadImpl : torch::nn::Module {
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
};

// detectron2's MaskRCNNConvUpsampleHead: `mask_head` = i: (conv 3x3, [norm,] ReLU) per conv
// (torchvision's MaskRCNNHeads), then `mask_predictor` = conv5_mask (2x2 deconv, stride 2), ReLU,
// mask_fcn_logits (1x1 conv to the classes) (MaskRCNNPredictor).
struct MaskRCNNConvUpsampleHeadImpl : MaskHeadImpl {
  explicit MaskRCNNConvUpsampleHeadImpl(MaskHeadOptions options);
  torch::Tensor forward(const torch::Tensor& x) override;

  MaskHeadOptions options;
  torch::nn::Sequential mask_head{nullptr};  // of ConvNormReLU (backbone/norm.h)
  torch::nn::ConvTranspose2d conv5_mask{nullptr};
  torch::nn::Conv2d mask_fcn_logits{nullptr};
};
TORCH_MODULE(MaskRCNNConvUpsampleHead);

using MaskHeadFactory = std::function<std::shared_ptr<MaskHeadImpl>(const MaskHeadOptions&)>;
// Adds or replaces a mask head by name (MODEL.ROI_MASK_HEAD.NAME).
void register_mask_head(const std::string& name, MaskHeadFactory factory);
// The head registered as `name`; unknown names throw largedet::Error listing the registered ones.
std::shared_ptr<MaskHeadImpl> build_mask_head(const std::string& name,
                                              const MaskHeadOptions& options);
std::vector<std::string> registered_mask_heads();

// maskrcnn_loss's targets for the RoIs `boxes` [N, R, 4] of each image, matched to its instances
// `matched` [N, R]: [N * R, m, m] float, rasterised from the loader's outline edges in one pass,
// or torchvision's RoIAlign of bitmaps (parity tests).
torch::Tensor mask_rcnn_targets(const TargetBatch& targets, const torch::Tensor& matched,
                                const torch::Tensor& boxes, int64_t m);
// maskrcnn_loss: binary cross-entropy of each positive RoI's logits of its class (labels [R])
// against its target [R, m, m], averaged over all pixels.
torch::Tensor mask_rcnn_loss(const torch::Tensor& mask_logits, const torch::Tensor& labels,
                             const torch::Tensor& targets);
// maskrcnn_inference: each detection's probability map of its class, [D, 1, 2P, 2P], into
// detections[i].masks (the logits of all images' detections, in order).
void mask_rcnn_inference(const torch::Tensor& mask_logits, std::vector<Detections>& detections);

}  // namespace largedet::modeling
