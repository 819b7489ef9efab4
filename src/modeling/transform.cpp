// Transform (see transform.h).
#include "largedet/modeling/transform.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/paste_masks.h"

namespace largedet::modeling {

std::pair<int64_t, int64_t> Transform::resized_size(int64_t height, int64_t width) const {
  if (options.min_size <= 0) return {height, width};
  // torchvision: a Python-float scale, output = floor(size * scale) (recompute_scale_factor).
  double lo = static_cast<double>(std::min(height, width));
  double hi = static_cast<double>(std::max(height, width));
  double scale = std::min(options.min_size / lo, options.max_size / hi);
  // At least one pixel: torchvision's floor gives a 1 x 5000 image 0 rows and fails inside
  // interpolate; training's resize (data/transforms) keeps one too.
  return {std::max<int64_t>(1, static_cast<int64_t>(std::floor(height * scale))),
          std::max<int64_t>(1, static_cast<int64_t>(std::floor(width * scale)))};
}

namespace {

int64_t round_up(int64_t v, int64_t divisible) {
  return divisible > 1 ? (v + divisible - 1) / divisible * divisible : v;
}

// Boxes scaled by (rx, ry, rx, ry), with the ratios as arguments of the kernels: a tensor of them
// would be sent to the boxes' device.
torch::Tensor scale_boxes(const torch::Tensor& boxes, float rx, float ry) {
  auto out = boxes.clone();
  out.slice(1, 0, 4, 2).mul_(rx);
  out.slice(1, 1, 4, 2).mul_(ry);
  return out;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> Transform::mean_and_std(const torch::Device& device) const {
  auto& n = *normalisation_;
  std::lock_guard<std::mutex> lock(n.mutex);
  if (!n.mean_on_device.defined() || n.mean_on_device.device() != device ||
      n.mean != options.pixel_mean || n.std != options.pixel_std) {
    // Rounded from double to float on the host, as torch would on the device.
    const auto channels = [&](const std::vector<double>& v, const char* what) {
      return ops::upload(torch::tensor(v, torch::kDouble).to(torch::kFloat).view({-1, 1, 1}),
                         device, what);
    };
    n.mean_on_device = channels(options.pixel_mean, "pixel mean");
    n.std_on_device = channels(options.pixel_std, "pixel std");
    n.mean = options.pixel_mean;
    n.std = options.pixel_std;
  }
  return {n.mean_on_device, n.std_on_device};
}

ImageList Transform::resize_and_pad(const std::vector<torch::Tensor>& images,
                                    const ImageSizes& sizes, const std::vector<bool>& flips) const {
  LARGEDET_CHECK(!images.empty(), "Transform: no images");
  int64_t H = 0, W = 0;
  for (const auto& [h, w] : sizes) {
    H = std::max(H, h);
    W = std::max(W, w);
  }
  H = round_up(H, options.size_divisible);
  W = round_up(W, options.size_divisible);
  const bool channels_last = options.channels_last.value_or(images[0].is_cuda());
  const auto like = images[0]
                        .options()
                        .dtype(torch::kFloat)
                        .memory_format(channels_last ? torch::MemoryFormat::ChannelsLast
                                                     : torch::MemoryFormat::Contiguous);
  // torch::zeros ignores the memory format.
  auto batch = torch::empty({static_cast<int64_t>(images.size()), 3, H, W}, like).zero_();
  const auto [mean, std] = mean_and_std(batch.device());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto [h, w] = sizes[i];
    // Normalised before resizing, as torchvision: bilinear weights sum to 1, so the order changes
    // nothing but rounding, and this order keeps torchvision's exactly.
    auto im = (images[i].to(torch::kFloat) - mean) / std;
    if (h != im.size(1) || w != im.size(2))
      im = at::upsample_bilinear2d(im.unsqueeze(0), {h, w}, false)[0];
    if (flips[i]) im = im.flip({2});
    batch[i].slice(1, 0, h).slice(2, 0, w).copy_(im);
  }
  return {batch, sizes};
}

ImageList Transform::operator()(const data::Batch& batch) const {
  const auto B = static_cast<size_t>(batch.size());
  LARGEDET_CHECK(batch.images.dim() == 4 && batch.images.size(1) == 3 &&
                     batch.images.size(0) == static_cast<int64_t>(B) &&
                     batch.decoded_sizes.size() == B && batch.image_sizes.size() == B &&
                     batch.flipped.size() == B,
                 "Transform: a batch of ", B, " images needs images [", B,
                 ", 3, H, W] and a decoded size, a size and a flip per image; got images ",
                 batch.images.sizes(), ", ", batch.decoded_sizes.size(), " decoded sizes, ",
                 batch.image_sizes.size(), " sizes, ", batch.flipped.size(), " flips");
  std::vector<torch::Tensor> images;
  ImageSizes sizes;
  for (size_t i = 0; i < B; ++i) {
    const auto [h, w] = batch.decoded_sizes[i];
    images.push_back(batch.images[static_cast<int64_t>(i)].slice(1, 0, h).slice(2, 0, w));
    sizes.emplace_back(batch.image_sizes[i][0], batch.image_sizes[i][1]);
  }
  return resize_and_pad(images, sizes, batch.flipped);
}

ImageList Transform::operator()(const std::vector<torch::Tensor>& images,
                                std::vector<Target>* targets) const {
  LARGEDET_CHECK(!targets || targets->size() == images.size(), "Transform: ", targets->size(),
                 " targets for ", images.size(), " images");
  ImageSizes sizes;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& im = images[i];
    LARGEDET_CHECK(im.dim() == 3 && im.size(0) == 3, "Transform: image ", i,
                   " is not [3, H, W]: ", im.sizes());
    const auto [h, w] = resized_size(im.size(1), im.size(2));
    sizes.emplace_back(h, w);
    if (!targets || (h == im.size(1) && w == im.size(2))) continue;
    auto& t = (*targets)[i];
    // resize_boxes: float32 ratios new / old (one rounding, as torch's float32 division).
    t.boxes = scale_boxes(t.boxes, static_cast<float>(w) / static_cast<float>(im.size(2)),
                          static_cast<float>(h) / static_cast<float>(im.size(1)));
    if (t.masks.defined() && t.masks.numel() > 0) {
      const auto dtype = t.masks.scalar_type();
      t.masks = at::upsample_nearest2d(t.masks.unsqueeze(1).to(torch::kFloat), {h, w})
                    .select(1, 0)
                    .to(dtype);
    }
  }
  return resize_and_pad(images, sizes, std::vector<bool>(images.size(), false));
}

void Transform::postprocess(std::vector<Detections>& detections, const ImageSizes& input_sizes,
                            const ImageSizes& original_sizes) {
  for (size_t i = 0; i < detections.size(); ++i) {
    auto& d = detections[i];
    d.boxes = scale_boxes(
        d.boxes,
        static_cast<float>(original_sizes[i].second) / static_cast<float>(input_sizes[i].second),
        static_cast<float>(original_sizes[i].first) / static_cast<float>(input_sizes[i].first));
    if (d.masks.defined()) {
      d.masks = ops::paste_masks_in_image(d.masks, d.boxes, original_sizes[i].first,
                                          original_sizes[i].second, /*threshold=*/-1)
                    .unsqueeze(1);
    }
  }
}

}  // namespace largedet::modeling
