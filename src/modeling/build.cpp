// Detectors from the configuration (see build.h).
#include "largedet/modeling/build.h"

#include <tuple>

#include "largedet/core/config.h"
#include "largedet/core/error.h"

namespace largedet::modeling {

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
  o.roi_heads.box_head_name = c.get<std::string>("MODEL.ROI_BOX_HEAD.NAME");
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
  o.roi_heads.mask_head_name = c.get<std::string>("MODEL.ROI_MASK_HEAD.NAME");
  o.roi_heads.mask_num_conv = c.get<int64_t>("MODEL.ROI_MASK_HEAD.NUM_CONV");
  o.roi_heads.mask_conv_dim = c.get<int64_t>("MODEL.ROI_MASK_HEAD.CONV_DIM");
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
  // auto stays unset: the Transform decides by the images' device, which MODEL.DEVICE sets.
  const auto channels_last = c.get<std::string>("MODEL.CHANNELS_LAST");
  if (channels_last != "auto") o.transform.channels_last = channels_last == "true";
  o.seed = static_cast<uint64_t>(c.get<int64_t>("SEED"));
  return o;
}

std::shared_ptr<DetectorImpl> build_detector(const Config& c) {
  auto arch = c.get<std::string>("MODEL.META_ARCHITECTURE");
  if (arch == "GeneralizedRCNN")
    return std::make_shared<GeneralizedRCNNImpl>(rcnn_options_from_config(c));
  return std::make_shared<RetinaNetImpl>(retinanet_options_from_config(c));
}

RetinaNetOptions retinanet_options_from_config(const Config& c) {
  auto rcnn = rcnn_options_from_config(c);
  RetinaNetOptions o;
  o.backbone = rcnn.backbone;
  o.backbone.returned_layers = {2, 3, 4};
  o.fpn_channels = rcnn.fpn_channels;
  o.fpn_norm = rcnn.fpn_norm;
  o.num_classes = c.get<int64_t>("MODEL.RETINANET.NUM_CLASSES") + 1;
  o.num_convs = c.get<int64_t>("MODEL.RETINANET.NUM_CONVS");
  std::tie(o.bg_iou_thresh, o.fg_iou_thresh) = iou_thresholds(c, "MODEL.RETINANET.IOU_THRESHOLDS");
  o.prior_prob = c.get<double>("MODEL.RETINANET.PRIOR_PROB");
  o.focal_alpha = c.get<double>("MODEL.RETINANET.FOCAL_LOSS_ALPHA");
  o.focal_gamma = c.get<double>("MODEL.RETINANET.FOCAL_LOSS_GAMMA");
  o.box_loss = c.get<std::string>("MODEL.RETINANET.BBOX_REG_LOSS_TYPE");
  o.smooth_l1_beta = c.get<double>("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA");
  o.detections_per_img = c.get<int64_t>("TEST.DETECTIONS_PER_IMAGE");
  o.topk_candidates = c.get<int64_t>("MODEL.RETINANET.TOPK_CANDIDATES_TEST");
  o.score_thresh = c.get<double>("MODEL.RETINANET.SCORE_THRESH_TEST");
  o.nms_thresh = c.get<double>("MODEL.RETINANET.NMS_THRESH_TEST");
  o.transform = rcnn.transform;
  // MODEL.ANCHOR_GENERATOR.SIZES is the R-CNN's one size per level; RetinaNet keeps its own
  // three octave scales per level unless the recipe gives several sizes per level.
  bool multi = false;
  for (const auto& s : rcnn.rpn.anchor_sizes) multi = multi || s.size() > 1;
  if (multi) o.anchor_sizes = rcnn.rpn.anchor_sizes;
  o.aspect_ratios = rcnn.rpn.aspect_ratios;
  return o;
}

}  // namespace largedet::modeling
