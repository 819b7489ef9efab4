// Batch: what the loader hands to the model, one per iteration and rank. The pixels stay 8-bit at
// their decoded size: the model resizes, mirrors, normalises and pads them on its device
// (modeling::Transform, the one preprocessing path), so a batch crosses to a GPU at a quarter of
// float32's bytes and, for images smaller than the training size, far less than that.
//
//   images          [B, 3, H, W] uint8, RGB planes; every image sits in the top-left corner,
//                   zero-padded to the largest of the batch. Page-locked when
//                   CollateOptions::pin_memory (allocated so: no second copy).
//   decoded_sizes   (h, w) of each image's pixels in `images`: the file's size, or less when
//                   TurboJPEG decoded it at a reduced scale.
//   image_sizes     (h, w) the model resizes each image to: the network input's valid region.
//   original_sizes  (h, w) of each image file; detections map back with scale_factors.
//   scale_factors   (sy, sx) = image_sizes / original_sizes per axis.
//   flipped         whether the model mirrors the image (training augmentation; the targets
//                   already are).
//   targets         per image, in image_sizes coordinates: boxes [N, 4] float32 xyxy in absolute
//                   pixels, labels [N] int64 in 1..K (0 = background, as torchvision), optional
//                   mask_edges [N, E, 3] (each mask as its outline's edges, a few KB: the model
//                   rasterises the RoIs' targets from them).
//   image_ids       the dataset's image ids (COCO ids; for OpenImages the record position).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <vector>

#include "largedet/data/image.h"
#include "largedet/data/transforms.h"

namespace largedet::data {

// One image after the mapper: pixels as decoded, the size the model will resize them to, and the
// targets already transformed to that size.
struct Sample {
  Image image;     // decoded (maybe by TurboJPEG's scaled decode), never resized or flipped here
  int height = 0;  // size the model resizes to; 0: the image's own size
  int width = 0;
  Target target;
  int64_t image_id = 0;
  int64_t record_index = 0;  // position in Dataset::records
  int original_height = 0, original_width = 0;
  bool flipped = false;  // the model mirrors the pixels; the targets already are
};

struct Batch {
  at::Tensor images;
  std::vector<std::array<int64_t, 2>> decoded_sizes;
  std::vector<std::array<int64_t, 2>> image_sizes;
  std::vector<std::array<int64_t, 2>> original_sizes;
  std::vector<std::array<double, 2>> scale_factors;
  std::vector<bool> flipped;
  std::vector<Target> targets;
  std::vector<int64_t> image_ids;

  int64_t size() const { return static_cast<int64_t>(image_ids.size()); }
  // Bytes of the image tensor (what crosses to the device, besides the small targets).
  int64_t image_bytes() const { return images.defined() ? images.nbytes() : 0; }
  // Images and targets on `device` (non_blocking pays off when the batch is pinned).
  Batch to(const at::Device& device, bool non_blocking = true) const;
};

struct CollateOptions {
  // Page-locked images and targets (DATALOADER.PIN_MEMORY when MODEL.DEVICE is cuda); ignored
  // where CUDA is absent.
  bool pin_memory = false;
};

Batch collate(std::vector<Sample> samples, const CollateOptions& options = {});

}  // namespace largedet::data
