// The detectors' preprocessing (torchvision's GeneralizedRCNNTransform): normalise, resize, mirror
// and pad a batch on its device, and map detections back to each image's original size.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "largedet/data/batch.h"
#include "largedet/modeling/structures.h"

namespace largedet::modeling {

// torchvision's GeneralizedRCNNTransform.
struct TransformOptions {
  // Images come in 0..255 (as the data layer decodes them); torchvision's 0..1 mean/std times 255.
  std::vector<double> pixel_mean = {123.675, 116.28, 103.53};
  std::vector<double> pixel_std = {58.395, 57.12, 57.375};
  int64_t min_size = 800, max_size = 1333;  // min_size <= 0: no resizing
  int64_t size_divisible = 32;
  // The batch in channels-last memory format (MODEL.CHANNELS_LAST): convolutions follow their
  // input's format, so the backbone, the FPN levels and RoIAlign stay NHWC end to end (cuDNN's
  // NHWC kernels, which tensor cores prefer). Unset (auto): on for images on a CUDA device.
  std::optional<bool> channels_last;
};

struct Transform {
  TransformOptions options;
  // The one preprocessing path, on the images' device: each image is normalised, resized to its
  // size (bilinear with half-pixel centres, torch's interpolate as torchvision), mirrored when
  // asked, and the batch is zero-padded (after normalisation, as detectron2) to a multiple of
  // size_divisible, in the memory format options.channels_last chooses.
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
  // options.pixel_mean and pixel_std as [3, 1, 1] float tensors on the device of the last batch:
  // sent there once, not with every batch. Copies of the Transform share it; it is remade when the
  // options or the device change.
  struct Normalisation {
    std::mutex mutex;
    std::vector<double> mean, std;
    torch::Tensor mean_on_device, std_on_device;
  };
  std::shared_ptr<Normalisation> normalisation_ = std::make_shared<Normalisation>();

  std::pair<torch::Tensor, torch::Tensor> mean_and_std(const torch::Device& device) const;
  ImageList resize_and_pad(const std::vector<torch::Tensor>& images, const ImageSizes& sizes,
                           const std::vector<bool>& flips) const;
};

}  // namespace largedet::modeling
