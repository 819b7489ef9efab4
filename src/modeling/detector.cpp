// Transform, GeneralizedRCNN, the builder from config, and weights I/O (see detector.h).
#include "largedet/modeling/detector.h"

#include <torch/torch.h>

#include <tuple>

#include <cmath>
#include <set>
#include <sstream>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/core/safetensors.h"
#include "largedet/modeling/retinanet.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/paste_masks.h"

namespace largedet::modeling {

// ---------------------------------------------------------------------------------------------
// Transform

std::pair<int64_t, int64_t> Transform::resized_size(int64_t height, int64_t width) const {
  if (options.min_size <= 0) return {height, width};
  // torchvision: a Python-float scale, output = floor(size * scale) (recompute_scale_factor).
  double lo = static_cast<double>(std::min(height, width));
  double hi = static_cast<double>(std::max(height, width));
  double scale = std::min(options.min_size / lo, options.max_size / hi);
  return {static_cast<int64_t>(std::floor(height * scale)),
          static_cast<int64_t>(std::floor(width * scale))};
}

namespace {

torch::Tensor channel_vector(const std::vector<double>& v, const torch::Tensor& like) {
  return torch::tensor(v, torch::kDouble).to(like.options()).view({-1, 1, 1});
}

int64_t round_up(int64_t v, int64_t divisible) {
  return divisible > 1 ? (v + divisible - 1) / divisible * divisible : v;
}

}  // namespace

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
  const auto like = images[0].options().dtype(torch::kFloat);
  auto batch = torch::zeros({static_cast<int64_t>(images.size()), 3, H, W}, like);
  const auto mean = channel_vector(options.pixel_mean, batch);
  const auto std = channel_vector(options.pixel_std, batch);
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
    // resize_boxes: float32 ratios new / old.
    auto ry = torch::tensor(static_cast<float>(h)) / static_cast<float>(im.size(1));
    auto rx = torch::tensor(static_cast<float>(w)) / static_cast<float>(im.size(2));
    t.boxes = t.boxes * torch::stack({rx, ry, rx, ry}).to(t.boxes.device());
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
    auto ry = torch::tensor(static_cast<float>(original_sizes[i].first)) /
              static_cast<float>(input_sizes[i].first);
    auto rx = torch::tensor(static_cast<float>(original_sizes[i].second)) /
              static_cast<float>(input_sizes[i].second);
    d.boxes = d.boxes * torch::stack({rx, ry, rx, ry}).to(d.boxes.device());
    if (d.masks.defined()) {
      d.masks = ops::paste_masks_in_image(d.masks, d.boxes, original_sizes[i].first,
                                          original_sizes[i].second, /*threshold=*/-1)
                    .unsqueeze(1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Detector

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

GeneralizedRCNNImpl::GeneralizedRCNNImpl(RCNNOptions opts) : options(std::move(opts)) {
  transform.options = options.transform;
  backbone = register_module("backbone", BackboneWithFPN(options.backbone, options.fpn_channels,
                                                         options.fpn_norm, FPNExtra::kMaxPool));
  rpn = register_module("rpn",
                        RegionProposalNetwork(options.fpn_channels, options.rpn, options.seed));
  roi_heads = register_module("roi_heads",
                              RoIHeads(options.fpn_channels, options.roi_heads, options.seed + 1));
}

LossMap GeneralizedRCNNImpl::losses(const ImageList& images, const std::vector<Target>& targets) {
  LARGEDET_CHECK(is_training(), "Detector::losses needs training mode (call train())");
  LARGEDET_CHECK(targets.size() == images.image_sizes.size(), "Detector: ", targets.size(),
                 " targets for ", images.image_sizes.size(), " images");
  // Degenerate boxes are looked for on every image at once, and read back once per step.
  std::vector<torch::Tensor> degenerate;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& b = targets[i].boxes;
    LARGEDET_CHECK(b.dim() == 2 && b.size(1) == 4, "Detector: image ", i,
                   " target boxes are not [N, 4]: ", b.sizes());
    degenerate.push_back(
        (b.select(1, 2) <= b.select(1, 0)).logical_or(b.select(1, 3) <= b.select(1, 1)).any());
  }
  if (!degenerate.empty()) {
    const auto flags = ops::read_to_host(torch::stack(degenerate), "degenerate target boxes");
    const auto flag = flags.accessor<bool, 1>();
    for (size_t i = 0; i < degenerate.size(); ++i) {
      LARGEDET_CHECK(!flag[static_cast<int64_t>(i)], "Detector: image ", i,
                     " has a degenerate target box (x2 <= x1 or y2 <= y1)");
    }
  }
  auto features = backbone->forward(images.tensor);
  auto [proposals, losses] = rpn->forward(features, {images.tensor.size(2), images.tensor.size(3)},
                                          images.image_sizes, &targets);
  auto [unused, roi_losses] = roi_heads->forward(features, proposals, images.image_sizes, &targets);
  losses.insert(roi_losses.begin(), roi_losses.end());
  return losses;
}

void GeneralizedRCNNImpl::reseed(uint64_t seed) {
  rpn->sampler =
      random_sampler(options.rpn.batch_size_per_image, options.rpn.positive_fraction, seed);
  roi_heads->sampler = random_sampler(options.roi_heads.batch_size_per_image,
                                      options.roi_heads.positive_fraction, seed + 1);
}

std::vector<Detections> GeneralizedRCNNImpl::inference(const ImageList& images) {
  auto features = backbone->forward(images.tensor);
  auto proposals =
      rpn->forward(features, {images.tensor.size(2), images.tensor.size(3)}, images.image_sizes)
          .first;
  return roi_heads->forward(features, proposals, images.image_sizes).first;
}

// ---------------------------------------------------------------------------------------------
// Builder

namespace {

std::string list_text(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out + "]";
}

// What LargeDet builds for each architecture, in detectron2's names.
struct ArchitectureLayout {
  std::string backbone;
  std::vector<std::string> stages;
  std::vector<std::pair<std::string, std::vector<std::string>>> head_features;
};

ArchitectureLayout layout_of(const std::string& arch) {
  if (arch == "RetinaNet")
    return {"build_retinanet_resnet_fpn_backbone",
            {"res3", "res4", "res5"},
            {{"MODEL.RETINANET.IN_FEATURES", {"p3", "p4", "p5", "p6", "p7"}}}};
  return {"build_resnet_fpn_backbone",
          {"res2", "res3", "res4", "res5"},
          {{"MODEL.RPN.IN_FEATURES", {"p2", "p3", "p4", "p5", "p6"}},
           {"MODEL.ROI_HEADS.IN_FEATURES", {"p2", "p3", "p4", "p5"}}}};
}

void expect(const Config& c, const std::string& key, const std::vector<std::string>& value,
            const std::string& arch) {
  if (c.get<std::vector<std::string>>(key) != value)
    throw Error("LargeDet's " + arch + " reads " + list_text(value) + " here, not " +
                    list_text(c.get<std::vector<std::string>>(key)),
                key + " (" + c.source(key) + ")", "set " + key + ": " + list_text(value));
}

}  // namespace

void resolve_architecture(Config& c) {
  const auto arch = c.get<std::string>("MODEL.META_ARCHITECTURE");
  const auto layout = layout_of(arch);
  const std::string why = "default for " + arch;
  auto fill = [&](const std::string& key, const std::string& yaml) {
    if (c.source(key) == "default") c.set(key, yaml, why);
  };
  fill("MODEL.BACKBONE.NAME", layout.backbone);
  fill("MODEL.RESNETS.OUT_FEATURES", list_text(layout.stages));
  fill("MODEL.FPN.IN_FEATURES", list_text(layout.stages));
  for (const auto& [key, features] : layout.head_features) fill(key, list_text(features));

  if (c.get<std::string>("MODEL.BACKBONE.NAME") != layout.backbone)
    throw Error("LargeDet's " + arch + " is built on " + layout.backbone,
                "MODEL.BACKBONE.NAME (" + c.source("MODEL.BACKBONE.NAME") + ")",
                "set MODEL.BACKBONE.NAME: " + layout.backbone);
  expect(c, "MODEL.RESNETS.OUT_FEATURES", layout.stages, arch);
  expect(c, "MODEL.FPN.IN_FEATURES", layout.stages, arch);
  for (const auto& [key, features] : layout.head_features) expect(c, key, features, arch);
}

std::pair<double, double> iou_thresholds(const Config& c, const std::string& key) {
  const auto iou = c.get<std::vector<double>>(key);
  if (iou.size() != 2 || iou[0] > iou[1])
    throw Error(key + " needs [background, foreground], increasing", c.source(key),
                "write e.g. [0.3, 0.7]");
  return {iou[0], iou[1]};
}

std::string num_classes_key(const Config& c) {
  return c.get<std::string>("MODEL.META_ARCHITECTURE") == "RetinaNet"
             ? "MODEL.RETINANET.NUM_CLASSES"
             : "MODEL.ROI_HEADS.NUM_CLASSES";
}

RCNNOptions rcnn_options_from_config(const Config& config) {
  Config c = config;
  resolve_architecture(c);
  RCNNOptions o;
  o.backbone.depth = c.get<int64_t>("MODEL.RESNETS.DEPTH");
  o.backbone.stem_out_channels = c.get<int64_t>("MODEL.RESNETS.STEM_OUT_CHANNELS");
  o.backbone.res2_out_channels = c.get<int64_t>("MODEL.RESNETS.RES2_OUT_CHANNELS");
  o.backbone.width_per_group = c.get<int64_t>("MODEL.RESNETS.WIDTH_PER_GROUP");
  o.backbone.num_groups = c.get<int64_t>("MODEL.RESNETS.NUM_GROUPS");
  o.backbone.stride_in_1x1 = c.get<bool>("MODEL.RESNETS.STRIDE_IN_1X1");
  o.backbone.freeze_at = c.get<int64_t>("MODEL.BACKBONE.FREEZE_AT");
  o.backbone.norm = c.get<std::string>("MODEL.RESNETS.NORM");
  o.fpn_channels = c.get<int64_t>("MODEL.FPN.OUT_CHANNELS");
  o.fpn_norm = c.get<std::string>("MODEL.FPN.NORM");
  o.rpn.anchor_sizes = c.get<std::vector<std::vector<double>>>("MODEL.ANCHOR_GENERATOR.SIZES");
  o.rpn.aspect_ratios =
      c.get<std::vector<std::vector<double>>>("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS");
  LARGEDET_CHECK(o.rpn.aspect_ratios.size() == 1,
                 "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS: LargeDet takes one list for all levels");
  o.rpn.pre_nms_top_n_train = c.get<int64_t>("MODEL.RPN.PRE_NMS_TOPK_TRAIN");
  o.rpn.pre_nms_top_n_test = c.get<int64_t>("MODEL.RPN.PRE_NMS_TOPK_TEST");
  o.rpn.post_nms_top_n_train = c.get<int64_t>("MODEL.RPN.POST_NMS_TOPK_TRAIN");
  o.rpn.post_nms_top_n_test = c.get<int64_t>("MODEL.RPN.POST_NMS_TOPK_TEST");
  o.rpn.nms_thresh = c.get<double>("MODEL.RPN.NMS_THRESH");
  o.rpn.batch_size_per_image = c.get<int64_t>("MODEL.RPN.BATCH_SIZE_PER_IMAGE");
  o.rpn.positive_fraction = c.get<double>("MODEL.RPN.POSITIVE_FRACTION");
  o.rpn.smooth_l1_beta = c.get<double>("MODEL.RPN.SMOOTH_L1_BETA");
  o.rpn.loss_weight = c.get<double>("MODEL.RPN.LOSS_WEIGHT");
  o.rpn.bbox_reg_loss_weight = c.get<double>("MODEL.RPN.BBOX_REG_LOSS_WEIGHT");
  std::tie(o.rpn.bg_iou_thresh, o.rpn.fg_iou_thresh) =
      iou_thresholds(c, "MODEL.RPN.IOU_THRESHOLDS");
  o.roi_heads.num_classes = c.get<int64_t>("MODEL.ROI_HEADS.NUM_CLASSES") + 1;
  o.roi_heads.batch_size_per_image = c.get<int64_t>("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE");
  o.roi_heads.positive_fraction = c.get<double>("MODEL.ROI_HEADS.POSITIVE_FRACTION");
  auto roi_iou = c.get<std::vector<double>>("MODEL.ROI_HEADS.IOU_THRESHOLDS");
  if (roi_iou.size() != 1)
    throw Error("MODEL.ROI_HEADS.IOU_THRESHOLDS takes one threshold",
                c.source("MODEL.ROI_HEADS.IOU_THRESHOLDS"), "write e.g. [0.5]");
  o.roi_heads.fg_iou_thresh = o.roi_heads.bg_iou_thresh = roi_iou[0];
  o.roi_heads.score_thresh = c.get<double>("MODEL.ROI_HEADS.SCORE_THRESH_TEST");
  o.roi_heads.nms_thresh = c.get<double>("MODEL.ROI_HEADS.NMS_THRESH_TEST");
  o.roi_heads.detections_per_img = c.get<int64_t>("TEST.DETECTIONS_PER_IMAGE");
  o.roi_heads.representation_size = c.get<int64_t>("MODEL.ROI_BOX_HEAD.FC_DIM");
  o.roi_heads.box_num_conv = c.get<int64_t>("MODEL.ROI_BOX_HEAD.NUM_CONV");
  o.roi_heads.box_conv_dim = c.get<int64_t>("MODEL.ROI_BOX_HEAD.CONV_DIM");
  o.roi_heads.box_num_fc = c.get<int64_t>("MODEL.ROI_BOX_HEAD.NUM_FC");
  o.roi_heads.box_norm = c.get<std::string>("MODEL.ROI_BOX_HEAD.NORM");
  o.roi_heads.mask_norm = c.get<std::string>("MODEL.ROI_MASK_HEAD.NORM");
  o.roi_heads.box_pool_size = c.get<int64_t>("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION");
  o.roi_heads.box_sampling_ratio = c.get<int64_t>("MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO");
  o.roi_heads.box_pool_aligned =
      c.get<std::string>("MODEL.ROI_BOX_HEAD.POOLER_TYPE") == "ROIAlignV2";
  o.roi_heads.smooth_l1_beta = c.get<double>("MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA");
  o.roi_heads.bbox_reg_loss_weight = c.get<double>("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT");
  o.roi_heads.mask_on = c.get<bool>("MODEL.MASK_ON");
  o.roi_heads.mask_pool_size = c.get<int64_t>("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION");
  o.roi_heads.mask_sampling_ratio = c.get<int64_t>("MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO");
  o.roi_heads.mask_pool_aligned =
      c.get<std::string>("MODEL.ROI_MASK_HEAD.POOLER_TYPE") == "ROIAlignV2";
  o.roi_heads.mask_layers.assign(c.get<int64_t>("MODEL.ROI_MASK_HEAD.NUM_CONV"),
                                 c.get<int64_t>("MODEL.ROI_MASK_HEAD.CONV_DIM"));
  o.roi_heads.mask_dim_reduced = c.get<int64_t>("MODEL.ROI_MASK_HEAD.CONV_DIM");
  o.transform.pixel_mean = c.get<std::vector<double>>("MODEL.PIXEL_MEAN");
  o.transform.pixel_std = c.get<std::vector<double>>("MODEL.PIXEL_STD");
  if (o.transform.pixel_mean.size() != 3 || o.transform.pixel_std.size() != 3) {
    throw Error(
        "MODEL.PIXEL_MEAN and MODEL.PIXEL_STD need 3 values (RGB)",
        c.source(o.transform.pixel_mean.size() != 3 ? "MODEL.PIXEL_MEAN" : "MODEL.PIXEL_STD"),
        "write e.g. [123.675, 116.28, 103.53]");
  }
  o.transform.min_size = c.get<int64_t>("INPUT.MIN_SIZE_TEST");
  o.transform.max_size = c.get<int64_t>("INPUT.MAX_SIZE_TEST");
  o.transform.size_divisible = c.get<int64_t>("INPUT.SIZE_DIVISIBILITY");
  o.seed = static_cast<uint64_t>(c.get<int64_t>("SEED"));
  return o;
}

std::shared_ptr<DetectorImpl> build_detector(const Config& c) {
  auto arch = c.get<std::string>("MODEL.META_ARCHITECTURE");
  if (arch == "GeneralizedRCNN")
    return std::make_shared<GeneralizedRCNNImpl>(rcnn_options_from_config(c));
  return std::make_shared<RetinaNetImpl>(retinanet_options_from_config(c));
}

// ---------------------------------------------------------------------------------------------
// Weights

std::string LoadReport::str() const {
  std::ostringstream out;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    out << v.size() << " " << what << ":";
    for (size_t i = 0; i < v.size() && i < 20; ++i) out << " " << v[i];
    if (v.size() > 20) out << " ...";
    out << "; ";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("mismatched", mismatched);
  return ok() ? "all tensors matched" : out.str();
}

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.value();
  return out;
}

namespace {
bool ignorable(const std::string& name) {
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

LoadReport load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& tensors, bool strict,
                           const std::string& source) {
  LoadReport report;
  auto own = state_dict(module);
  torch::NoGradGuard guard;
  for (auto& [name, dst] : own) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (!ignorable(name)) report.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != dst.sizes()) {
      report.mismatched.push_back(name + ": file " + shape_str(it->second) + " vs model " +
                                  shape_str(dst));
      continue;
    }
    dst.copy_(it->second);
  }
  for (const auto& [name, t] : tensors)
    if (!own.count(name) && !ignorable(name)) report.unexpected.push_back(name);
  if (strict && !report.ok())
    throw Error("weights do not match the model: " + report.str(), source,
                "check MODEL.* (depth, classes, mask head) or load without --strict");
  return report;
}

LoadReport load_weights(torch::nn::Module& module, const std::string& path, bool strict) {
  auto contents = safetensors::load(path);
  return load_state_dict(module, contents.tensors, strict, path);
}

void save_weights(const torch::nn::Module& module, const std::string& path) {
  safetensors::TensorMap map;
  for (auto& [name, t] : state_dict(module)) map[name] = t.detach();
  safetensors::save(path, map, {{"format", "largedet"}});
}

}  // namespace largedet::modeling
