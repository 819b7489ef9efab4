// The mask heads, their registry, and maskrcnn_loss / maskrcnn_inference (see
// roi_heads/mask_head.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/roi_heads/mask_head.h"

#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/modeling/backbone/norm.h"
#include "largedet/modeling/registry.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/mask_targets.h"
#include "largedet/ops/roi_align.h"

namespace largedet::modeling {

namespace {

std::vector<int64_t> counts(const std::vector<torch::Tensor>& xs) {
  std::vector<int64_t> n;
  for (const auto& x : xs) n.push_back(x.size(0));
  return n;
}

// One conv of each of `layers`' widths from in_channels, each followed by `norm` (when not "")
// and a ReLU (torchvision's MaskRCNNHeads).
torch::nn::Sequential make_mask_head(int64_t in_channels, const std::vector<int64_t>& layers,
                                     const std::string& norm) {
  torch::nn::Sequential head;
  for (auto out : layers) {
    head->push_back(ConvNormReLU(in_channels, out, norm));
    in_channels = out;
  }
  return head;
}

Registry<MaskHeadFactory>& mask_heads() {
  static auto* registry = new Registry<MaskHeadFactory>(
      "mask head", "MODEL.ROI_MASK_HEAD.NAME", "register one with modeling::register_mask_head",
      {{"MaskRCNNConvUpsampleHead", [](const MaskHeadOptions& o) -> std::shared_ptr<MaskHeadImpl> {
          return MaskRCNNConvUpsampleHead(o).ptr();
        }}});
  return *registry;
}

}  // namespace

MaskRCNNConvUpsampleHeadImpl::MaskRCNNConvUpsampleHeadImpl(MaskHeadOptions o)
    : options(std::move(o)) {
  const std::vector<int64_t> layers(options.num_conv(), options.conv_dim());
  mask_head =
      register_module("mask_head", make_mask_head(options.in_channels(), layers, options.norm()));
  const int64_t c = layers.empty() ? options.in_channels() : layers.back();
  auto mp = std::make_shared<torch::nn::Module>();
  conv5_mask = mp->register_module(
      "conv5_mask", torch::nn::ConvTranspose2d(
                        torch::nn::ConvTranspose2dOptions(c, options.conv_dim(), 2).stride(2)));
  mask_fcn_logits = mp->register_module(
      "mask_fcn_logits",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(options.conv_dim(), options.num_classes(), 1)));
  for (auto& p : mp->named_parameters()) {
    if (p.key().find("weight") != std::string::npos)
      torch::nn::init::kaiming_normal_(p.value(), 0.0, torch::kFanOut, torch::kReLU);
    else
      torch::nn::init::zeros_(p.value());
  }
  register_module("mask_predictor", mp);
}

torch::Tensor MaskRCNNConvUpsampleHeadImpl::forward(const torch::Tensor& features) {
  auto x = features;
  if (!mask_head->is_empty()) x = mask_head->forward(x);
  return mask_fcn_logits->forward(torch::relu(conv5_mask->forward(x)));
}

void register_mask_head(const std::string& name, MaskHeadFactory factory) {
  mask_heads().add(name, std::move(factory));
}

std::shared_ptr<MaskHeadImpl> build_mask_head(const std::string& name,
                                              const MaskHeadOptions& options) {
  auto head = mask_heads().get(name)(options);
  LARGEDET_CHECK(head != nullptr, "mask head '", name, "': its factory returned no module");
  return head;
}

std::vector<std::string> registered_mask_heads() { return mask_heads().names(); }

torch::Tensor mask_rcnn_targets(const TargetBatch& targets, const torch::Tensor& matched,
                                const torch::Tensor& boxes, int64_t m) {
  const int64_t num_images = targets.num_images(), per_image = boxes.size(1);
  const auto& images = targets.images;
  const auto options = boxes.options().dtype(torch::kFloat);
  bool edges = false;
  for (size_t i = 0; i < images.size(); ++i) {
    LARGEDET_CHECK(images[i].mask_edges.defined() || images[i].masks.defined(),
                   "Mask R-CNN training: image ", i, " has no masks");
    edges = edges || images[i].mask_edges.defined();
  }
  if (edges) {
    // Every instance's edges in one tensor (padded to the most edges: rows of zeros cross
    // nothing), indexed by each image's offset plus its matched instance: one rasterisation.
    std::vector<torch::Tensor> all;
    std::vector<int64_t> offsets;
    int64_t most = 0, total = 0;
    for (size_t i = 0; i < images.size(); ++i) {
      LARGEDET_CHECK(images[i].mask_edges.defined(), "Mask R-CNN training: image ", i,
                     " has masks as bitmaps but others as outline edges");
      most = std::max(most, images[i].mask_edges.size(1));
    }
    for (const auto& t : images) {
      offsets.push_back(total);
      total += t.mask_edges.size(0);
      all.push_back(torch::constant_pad_nd(t.mask_edges, {0, 0, 0, most - t.mask_edges.size(1)}));
    }
    if (total == 0) return torch::zeros({num_images * per_image, m, m}, options);
    auto offset = ops::upload(torch::tensor(offsets, torch::kLong), matched.device(),
                              "mask targets: first "
                              "instance per image")
                      .unsqueeze(1);
    // Slots without a positive may point past the last instance (an image without any): any
    // instance serves them, their targets are masked out of the loss.
    return ops::rasterize_mask_edges(torch::cat(all, 0),
                                     (matched + offset).clamp_max(total - 1).flatten(),
                                     boxes.reshape({-1, 4}), m);
  }
  // Bitmaps (torchvision's targets: RoIAlign of each matched instance's mask), image by image.
  std::vector<torch::Tensor> out;
  ops::RoIAlignOptions ro;
  ro.output_height = ro.output_width = m;
  ro.spatial_scale = 1.0;
  ro.sampling_ratio = -1;
  ro.aligned = false;
  for (int64_t i = 0; i < num_images; ++i) {
    const auto& masks = images[static_cast<size_t>(i)].masks;
    if (masks.size(0) == 0) {
      out.push_back(torch::zeros({per_image, m, m}, options));
      continue;
    }
    auto rois =
        torch::cat({matched[i].to(torch::kFloat).unsqueeze(1), boxes[i].to(torch::kFloat)}, 1);
    out.push_back(ops::roi_align(masks.unsqueeze(1).to(torch::kFloat), rois, ro).select(1, 0));
  }
  return torch::cat(out, 0);
}

torch::Tensor mask_rcnn_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                             const torch::Tensor& targets) {
  // maskrcnn_loss
  if (targets.numel() == 0) return logits.sum() * 0;
  auto sel =
      logits.gather(1, labels.view({-1, 1, 1, 1}).expand({-1, 1, logits.size(2), logits.size(3)}))
          .squeeze(1);
  return torch::binary_cross_entropy_with_logits(sel, targets.to(sel.scalar_type()));
}

void mask_rcnn_inference(const torch::Tensor& logits, std::vector<Detections>& result) {
  std::vector<torch::Tensor> boxes;
  for (const auto& d : result) boxes.push_back(d.boxes);
  std::vector<torch::Tensor> labels_list;
  for (const auto& d : result) labels_list.push_back(d.labels);
  auto lab = torch::cat(labels_list, 0);
  // maskrcnn_inference: the probability map of each detection's class.
  auto probs = logits.sigmoid().gather(
      1, lab.view({-1, 1, 1, 1}).expand({-1, 1, logits.size(2), logits.size(3)}));
  auto split = probs.split_with_sizes(counts(boxes), 0);
  for (size_t i = 0; i < result.size(); ++i) result[i].masks = split[i];
}

}  // namespace largedet::modeling
