// Batch: what the loader hands to the model, one per iteration and rank.
//
//   images          [B, 3, H, W] float32, RGB, normalised ((pixel - PIXEL_MEAN) / PIXEL_STD, both
//                   in 0..255 units) when CollateOptions::normalize, raw 0..255 otherwise; every
//                   image sits in the top-left corner, zero-padded (after normalisation, as
//                   detectron2) so that H and W are multiples of SIZE_DIVISIBILITY.
//   image_sizes     (h, w) of each image after resizing, before padding: the valid region.
//   original_sizes  (h, w) of each image file; detections map back with scale_factors.
//   scale_factors   (sy, sx) = resized / original per axis.
//   flipped         whether the image was mirrored (training augmentation).
//   targets         per image: boxes [N, 4] float32 xyxy in absolute pixels of the resized image,
//                   labels [N] int64 in 1..K (0 = background, as torchvision), optional masks
//                   [N, h, w] uint8 at the unpadded size, polygons (see transforms.h).
//   image_ids       the dataset's image ids (COCO ids; for OpenImages the record position).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

#include "largedet/data/image.h"
#include "largedet/data/transforms.h"

namespace largedet::data {

// One image after the mapper. The pixels stay 8-bit HWC at their decoded size: collate resizes,
// flips, normalises and pads them in one pass straight into the batch (resize_normalize_into),
// which saves two full passes over the resized image. The targets are already transformed.
struct Sample {
  Image image;     // decoded (maybe by TurboJPEG's scaled decode), not yet resized or flipped
  int height = 0;  // size after resizing; 0: the image's own size
  int width = 0;
  Target target;
  int64_t image_id = 0;
  int64_t record_index = 0;  // position in Dataset::records
  int original_height = 0, original_width = 0;
  bool flipped = false;  // collate mirrors the pixels; the targets already are
};

struct Batch {
  at::Tensor images;
  std::vector<std::array<int64_t, 2>> image_sizes;
  std::vector<std::array<int64_t, 2>> original_sizes;
  std::vector<std::array<double, 2>> scale_factors;
  std::vector<bool> flipped;
  std::vector<Target> targets;
  std::vector<int64_t> image_ids;

  int64_t size() const { return static_cast<int64_t>(image_ids.size()); }
  // Images and targets on `device` (non_blocking pays off when the images are pinned).
  Batch to(const at::Device& device, bool non_blocking = true) const;
};

struct CollateOptions {
  int size_divisibility = 32;  // INPUT.SIZE_DIVISIBILITY; <= 1: no rounding
  bool normalize = true;
  std::array<float, 3> pixel_mean{123.675f, 116.28f, 103.53f};  // MODEL.PIXEL_MEAN (RGB)
  std::array<float, 3> pixel_std{58.395f, 57.12f, 57.375f};     // MODEL.PIXEL_STD
  bool pin_memory = false;  // DATALOADER.PIN_MEMORY; ignored where CUDA is absent
};

Batch collate(std::vector<Sample> samples, const CollateOptions& options = {});

}  // namespace largedet::data
