// The Detector interface's entry points (see meta_arch/detector.h): preprocessing, the detector's
// losses or inference, and detections back in each image's coordinates.
#include "largedet/modeling/meta_arch/detector.h"

#include <torch/torch.h>

namespace largedet::modeling {

std::vector<Detections> DetectorImpl::detect(const std::vector<torch::Tensor>& images) {
  ImageSizes original;
  for (const auto& im : images) original.emplace_back(im.size(-2), im.size(-1));
  auto batch = transform(images);
  auto detections = inference(batch);
  Transform::postprocess(detections, batch.image_sizes, original);
  return detections;
}

LossMap DetectorImpl::losses(const std::vector<torch::Tensor>& images,
                             std::vector<Target> targets) {
  auto batch = transform(images, &targets);
  return losses(batch, targets);
}

LossMap DetectorImpl::forward(const data::Batch& batch) {
  std::vector<Target> targets;
  for (const auto& t : batch.targets) targets.push_back({t.boxes, t.labels, {}, t.mask_edges});
  return losses(transform(batch), targets);
}

std::vector<Detections> DetectorImpl::detect(const data::Batch& batch) {
  auto images = transform(batch);
  auto detections = inference(images);
  ImageSizes original;
  for (const auto& s : batch.original_sizes) original.emplace_back(s[0], s[1]);
  Transform::postprocess(detections, images.image_sizes, original);
  return detections;
}

}  // namespace largedet::modeling
