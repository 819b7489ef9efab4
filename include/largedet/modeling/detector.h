// The Detector interface and its builders: torchvision-style input transform (normalise, resize,
// pad), GeneralizedRCNN (Faster / Mask R-CNN), built by name from the MODEL.* configuration, and
// weights in safetensors with torchvision's parameter names.
#pragma once

#include <torch/nn.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "largedet/data/batch.h"
#include "largedet/modeling/backbone.h"
#include "largedet/modeling/rcnn.h"

namespace largedet {
class Config;
}

namespace largedet::modeling {

// A batch as the network sees it: normalised images padded to a common size, and each image's
// size before padding.
struct ImageList {
  torch::Tensor tensor;    // [B, 3, H, W] float
  ImageSizes image_sizes;  // (height, width) per image, <= (H, W)
};

// torchvision's GeneralizedRCNNTransform.
struct TransformOptions {
  // Images come in 0..255 (as the data layer decodes them); torchvision's 0..1 mean/std times 255.
  std::vector<double> pixel_mean = {123.675, 116.28, 103.53};
  std::vector<double> pixel_std = {58.395, 57.12, 57.375};
  int64_t min_size = 800, max_size = 1333;  // min_size <= 0: no resizing
  int64_t size_divisible = 32;
};

struct Transform {
  TransformOptions options;
  // The one preprocessing path, on the images' device: each image is normalised, resized to its
  // size (bilinear with half-pixel centres, torch's interpolate as torchvision), mirrored when
  // asked, and the batch is zero-padded (after normalisation, as detectron2) to a multiple of
  // size_divisible.
  //
  // The loader's batches (data/batch.h): 8-bit images at their decoded size, resized to
  // image_sizes, mirrored where flipped; the targets already are in those coordinates.
  ImageList operator()(const data::Batch& batch) const;
  // Raw [3, H, W] 0..255 images of any size and dtype, each resized by torchvision's rule
  // (resized_size); target boxes and masks (when given) are resized alike.
  ImageList operator()(const std::vector<torch::Tensor>& images,
                       std::vector<Target>* targets = nullptr) const;
  // Boxes (and pasted masks) from network-input to original image coordinates.
  static void postprocess(std::vector<Detections>& detections, const ImageSizes& input_sizes,
                          const ImageSizes& original_sizes);
  // The size torchvision's resize gives an image of (height, width).
  std::pair<int64_t, int64_t> resized_size(int64_t height, int64_t width) const;

 private:
  ImageList resize_and_pad(const std::vector<torch::Tensor>& images, const ImageSizes& sizes,
                           const std::vector<bool>& flips) const;
};

// One interface for every detector. Training: losses() returns named losses (summed by the
// trainer). Evaluation: detect() returns per-image detections in original image coordinates.
struct DetectorImpl : torch::nn::Module {
  // images: preprocessed (see Transform); targets in the same coordinates.
  virtual LossMap losses(const ImageList& images, const std::vector<Target>& targets) = 0;
  // Detections in the network-input coordinates of `images` (masks as the heads give them).
  virtual std::vector<Detections> inference(const ImageList& images) = 0;

  // Raw [3, H, W] 0..255 images of any size: transform, inference, back to each image's size
  // (masks pasted into the image as [D, 1, H, W] probabilities).
  std::vector<Detections> detect(const std::vector<torch::Tensor>& images);
  // Raw images with targets in their coordinates: transform (resizing targets too), losses.
  LossMap losses(const std::vector<torch::Tensor>& images, std::vector<Target> targets);

  // The loader's batches (data/batch.h), preprocessed by `transform` on the batch's device.
  LossMap forward(const data::Batch& batch);
  // Detections in each image's original coordinates (Batch::original_sizes).
  std::vector<Detections> detect(const data::Batch& batch);

  // Restarts every random choice the model makes in training (the R-CNN samplers) from `seed`.
  // The trainer reseeds before each step from (SEED, iteration, rank, micro-step), so a resumed
  // run draws exactly what an uninterrupted one would, with no generator state in checkpoints.
  virtual void reseed(uint64_t /*seed*/) {}

  Transform transform;
};

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
  using DetectorImpl::losses;

  RCNNOptions options;
  BackboneWithFPN backbone{nullptr};
  RegionProposalNetwork rpn{nullptr};
  RoIHeads roi_heads{nullptr};
};
TORCH_MODULE(GeneralizedRCNN);

// MODEL.META_ARCHITECTURE: GeneralizedRCNN (MODEL.MASK_ON picks Mask R-CNN) or RetinaNet;
// MODEL.ROI_HEADS.NUM_CLASSES or MODEL.RETINANET.NUM_CLASSES counts the object classes
// (background excluded), INPUT.*_TEST sizes.
std::shared_ptr<DetectorImpl> build_detector(const Config& config);
RCNNOptions rcnn_options_from_config(const Config& config);
// Gives the keys that depend on the architecture (MODEL.BACKBONE.NAME, MODEL.RESNETS.OUT_FEATURES,
// MODEL.FPN.IN_FEATURES, the heads' IN_FEATURES) the architecture's value where nothing set them,
// and refuses values LargeDet does not build, naming the key and the value to write.
void resolve_architecture(Config& config);
// [background below, foreground from] of a matcher's IOU_THRESHOLDS key, checked.
std::pair<double, double> iou_thresholds(const Config& config, const std::string& key);
// The key that holds the number of classes for the recipe's architecture.
std::string num_classes_key(const Config& config);

// ---------------------------------------------------------------------------------------------
// Weights (torchvision names: a converted torchvision state_dict loads as is)

struct LoadReport {
  std::vector<std::string> missing;     // in the model, not in the file
  std::vector<std::string> unexpected;  // in the file, not in the model
  std::vector<std::string> mismatched;  // "name: file [..] vs model [..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string str() const;
};

// Every parameter and buffer by dotted name.
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);
// Copies matching tensors; BatchNorm's num_batches_tracked missing from or unexpected in a file
// is ignored (FrozenBN has none). strict: anything left in the report throws largedet::Error.
LoadReport load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& tensors, bool strict,
                           const std::string& source = "state dict");
LoadReport load_weights(torch::nn::Module& module, const std::string& path, bool strict = false);
void save_weights(const torch::nn::Module& module, const std::string& path);

}  // namespace largedet::modeling
