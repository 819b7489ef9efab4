// The Detector interface: every detector (GeneralizedRCNN, RetinaNet) takes raw images, the
// loader's batches or preprocessed ImageLists, and returns named losses or detections.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "largedet/data/batch.h"
#include "largedet/modeling/structures.h"
#include "largedet/modeling/transform.h"

namespace largedet::modeling {

struct DetectorPart {
  std::string name;  // "backbone", "fpn", "rpn", "box_head", "mask_head", "head"
  std::vector<std::shared_ptr<torch::nn::Module>> modules;
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
  // The detector's parts in the sense of AGVM (docs/solver.md, "AGVM"), each with the submodules
  // that hold its parameters, the backbone's body first: every trainable parameter is in one.
  virtual std::vector<DetectorPart> parts() = 0;

  Transform transform;
};

}  // namespace largedet::modeling
