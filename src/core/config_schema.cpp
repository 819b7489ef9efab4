// Every key with its type, default and limits, in the order `largedet config --dump` prints them.
// Names and meanings are detectron2's wherever detectron2 has the setting (its
// config/defaults.py); KeyOrigin::kLargeDet marks our own additions. Defaults are torchvision's
// behaviour where the two frameworks differ; `detectron2_default` records detectron2's value
// for the warning that `VERSION: 2` recipes get. This file is data.
#include "largedet/core/config_schema.h"

#include "largedet/core/limits.h"

#include <map>

namespace largedet {
namespace {

using T = ValueType;
constexpr auto D2 = KeyOrigin::kDetectron2;
constexpr auto OURS = KeyOrigin::kLargeDet;

KeySpec spec(std::string key, std::string value, ValueType type, KeyOrigin origin,
             std::string help) {
  KeySpec s;
  s.key = std::move(key);
  s.default_yaml = std::move(value);
  s.type = type;
  s.origin = origin;
  s.help = std::move(help);
  return s;
}

KeySpec range(KeySpec s, std::optional<double> min, std::optional<double> max = std::nullopt) {
  s.min = min;
  s.max = max;
  return s;
}

KeySpec only(KeySpec s, std::vector<std::string> choices) {
  s.choices = std::move(choices);
  return s;
}

KeySpec differs(KeySpec s, std::string detectron2_default) {
  s.detectron2_default = std::move(detectron2_default);
  return s;
}

std::vector<KeySpec> make_schema() {
  return {
      only(spec("VERSION", "2", T::kInt, D2, "detectron2's config version; only 2 exists"), {"2"}),
      differs(range(spec("SEED", "0", T::kInt, D2,
                         "seed of sampling, augmentation and initialisation (runs are "
                         "deterministic; detectron2's -1, a random seed, is not supported)"),
                    0),
              "-1"),
      differs(spec("OUTPUT_DIR", "output", T::kString, D2, "where runs write"), "./output"),
      spec("CUDNN_BENCHMARK", "false", T::kBool, D2, "let cuDNN pick convolution algorithms"),
      spec("LOG_LEVEL", "info", T::kString, OURS, "debug, info, warning, error or off"),
      range(spec("NUM_THREADS", "0", T::kInt, OURS,
                 "intra-op threads per rank; 0: the cores divided by the local ranks"),
            0, 1024),

      spec("MODEL.MASK_ON", "false", T::kBool, D2, "Mask R-CNN: add the mask head"),
      differs(spec("MODEL.DEVICE", "cpu", T::kString, D2, "cpu or cuda (each rank its GPU)"),
              "cuda"),
      only(spec("MODEL.CHANNELS_LAST", "auto", T::kString, OURS,
                "batches in channels-last (NHWC) memory format end to end: auto (on with "
                "MODEL.DEVICE cuda), true or false"),
           {"auto", "true", "false"}),
      only(spec("MODEL.META_ARCHITECTURE", "GeneralizedRCNN", T::kString, D2,
                "GeneralizedRCNN (Faster/Mask R-CNN) or RetinaNet"),
           {"GeneralizedRCNN", "RetinaNet"}),
      spec("MODEL.WEIGHTS", "", T::kString, D2,
           "safetensors file in torchvision's names (tools/convert_torchvision.py)"),
      differs(spec("MODEL.PIXEL_MEAN", "[123.675, 116.28, 103.53]", T::kFloatList, D2,
                   "per-channel mean in 0..255, RGB (torchvision's ImageNet statistics)"),
              "[103.530, 116.280, 123.675] (BGR)"),
      differs(range(spec("MODEL.PIXEL_STD", "[58.395, 57.12, 57.375]", T::kFloatList, D2,
                         "per-channel std in 0..255, RGB"),
                    1e-6),
              "[1.0, 1.0, 1.0]"),

      differs(only(spec("MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone", T::kString, D2,
                        "ResNet-FPN for R-CNN; build_retinanet_resnet_fpn_backbone (P3-P7) "
                        "for RetinaNet"),
                   {"build_resnet_fpn_backbone", "build_retinanet_resnet_fpn_backbone"}),
              "build_resnet_backbone"),
      range(spec("MODEL.BACKBONE.FREEZE_AT", "2", T::kInt, D2,
                 "stages frozen: 0 none, 1 the stem, 2 stem + res2, ... 5 all"),
            0, 5),

      only(spec("MODEL.RESNETS.DEPTH", "50", T::kInt, D2, "18, 34, 50, 101 or 152"),
           {"18", "34", "50", "101", "152"}),
      differs(spec("MODEL.RESNETS.OUT_FEATURES", "[res2, res3, res4, res5]", T::kStringList, D2,
                   "stages the FPN reads: res2-res5 (R-CNN) or res3-res5 (RetinaNet)"),
              "[res4]"),
      range(spec("MODEL.RESNETS.NUM_GROUPS", "1", T::kInt, D2, "1: ResNet; > 1: ResNeXt"), 1),
      spec("MODEL.RESNETS.NORM", "FrozenBN", T::kString, D2,
           "FrozenBN, BN, GN, SyncBN, or a norm registered with modeling::register_norm"),
      range(spec("MODEL.RESNETS.WIDTH_PER_GROUP", "64", T::kInt, D2,
                 "width of each group of res2's 3x3 conv; scales every stage"),
            1),
      differs(spec("MODEL.RESNETS.STRIDE_IN_1X1", "false", T::kBool, D2,
                   "stride on the bottleneck's 1x1 conv (MSRA weights) instead of its 3x3 "
                   "(torchvision weights)"),
              "true"),
      only(spec("MODEL.RESNETS.RES5_DILATION", "1", T::kInt, D2, "only 1 (no dilation)"), {"1"}),
      range(spec("MODEL.RESNETS.RES2_OUT_CHANNELS", "256", T::kInt, D2,
                 "res2's output width (R18/R34: equal to WIDTH_PER_GROUP, 64 by default)"),
            1),
      range(spec("MODEL.RESNETS.STEM_OUT_CHANNELS", "64", T::kInt, D2, "the stem's width"), 1),

      differs(spec("MODEL.FPN.IN_FEATURES", "[res2, res3, res4, res5]", T::kStringList, D2,
                   "equal to MODEL.RESNETS.OUT_FEATURES"),
              "[]"),
      range(spec("MODEL.FPN.OUT_CHANNELS", "256", T::kInt, D2, "FPN width"), 1),
      spec("MODEL.FPN.NORM", "", T::kString, D2, "\"\" (none), GN, BN, SyncBN, FrozenBN"),
      only(spec("MODEL.FPN.FUSE_TYPE", "sum", T::kString, D2, "top-down fusion; only sum"),
           {"sum"}),

      only(spec("MODEL.PROPOSAL_GENERATOR.NAME", "RPN", T::kString, D2, "only RPN"), {"RPN"}),
      only(spec("MODEL.ANCHOR_GENERATOR.NAME", "DefaultAnchorGenerator", T::kString, D2,
                "only DefaultAnchorGenerator"),
           {"DefaultAnchorGenerator"}),
      differs(range(spec("MODEL.ANCHOR_GENERATOR.SIZES", "[[32], [64], [128], [256], [512]]",
                         T::kFloatLists, D2,
                         "anchor sizes per level (one list: shared by all levels); RetinaNet "
                         "with one size per level uses 3 octave scales of it"),
                    1e-6),
              "[[32, 64, 128, 256, 512]]"),
      range(spec("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS", "[[0.5, 1.0, 2.0]]", T::kFloatLists, D2,
                 "height/width ratios: one list for all levels"),
            1e-6),
      only(spec("MODEL.ANCHOR_GENERATOR.OFFSET", "0.0", T::kFloat, D2, "only 0.0"), {"0"}),

      only(spec("MODEL.RPN.HEAD_NAME", "StandardRPNHead", T::kString, D2, "only StandardRPNHead"),
           {"StandardRPNHead"}),
      differs(spec("MODEL.RPN.IN_FEATURES", "[p2, p3, p4, p5, p6]", T::kStringList, D2,
                   "FPN levels the RPN reads: p2-p6"),
              "[res4]"),
      only(spec("MODEL.RPN.BOUNDARY_THRESH", "-1", T::kInt, D2, "only -1 (no pruning)"), {"-1"}),
      range(spec("MODEL.RPN.IOU_THRESHOLDS", "[0.3, 0.7]", T::kFloatList, D2,
                 "[background below, foreground from]"),
            0, 1),
      only(spec("MODEL.RPN.IOU_LABELS", "[0, -1, 1]", T::kIntList, D2, "only [0, -1, 1]"),
           {"[0, -1, 1]"}),
      range(spec("MODEL.RPN.BATCH_SIZE_PER_IMAGE", "256", T::kInt, D2, "anchors sampled per image"),
            1),
      range(spec("MODEL.RPN.POSITIVE_FRACTION", "0.5", T::kFloat, D2, "of the sampled anchors"), 0,
            1),
      only(spec("MODEL.RPN.BBOX_REG_LOSS_TYPE", "smooth_l1", T::kString, D2, "only smooth_l1"),
           {"smooth_l1"}),
      range(spec("MODEL.RPN.BBOX_REG_LOSS_WEIGHT", "1.0", T::kFloat, D2,
                 "weight of loss_rpn_loc (times MODEL.RPN.LOSS_WEIGHT)"),
            0),
      only(spec("MODEL.RPN.BBOX_REG_WEIGHTS", "[1.0, 1.0, 1.0, 1.0]", T::kFloatList, D2,
                "only [1, 1, 1, 1]"),
           {"[1, 1, 1, 1]"}),
      differs(range(spec("MODEL.RPN.SMOOTH_L1_BETA", "0.1111111111111111", T::kFloat, D2,
                         "smooth-L1 transition (torchvision's 1/9; 0 is L1)"),
                    0),
              "0.0"),
      range(spec("MODEL.RPN.LOSS_WEIGHT", "1.0", T::kFloat, D2, "weight of both RPN losses"), 0),
      differs(range(spec("MODEL.RPN.PRE_NMS_TOPK_TRAIN", "2000", T::kInt, D2,
                         "proposals per level before NMS, training"),
                    1),
              "12000"),
      differs(range(spec("MODEL.RPN.PRE_NMS_TOPK_TEST", "1000", T::kInt, D2,
                         "proposals per level before NMS, inference"),
                    1),
              "6000"),
      range(spec("MODEL.RPN.POST_NMS_TOPK_TRAIN", "2000", T::kInt, D2,
                 "proposals per image after NMS, training"),
            1),
      range(spec("MODEL.RPN.POST_NMS_TOPK_TEST", "1000", T::kInt, D2,
                 "proposals per image after NMS, inference"),
            1),
      range(spec("MODEL.RPN.NMS_THRESH", "0.7", T::kFloat, D2, "IoU of the proposals' NMS"), 0, 1),
      only(spec("MODEL.RPN.CONV_DIMS", "[-1]", T::kIntList, D2, "only [-1] (one conv)"), {"[-1]"}),

      differs(only(spec("MODEL.ROI_HEADS.NAME", "StandardROIHeads", T::kString, D2,
                        "only StandardROIHeads"),
                   {"StandardROIHeads"}),
              "Res5ROIHeads"),
      range(spec("MODEL.ROI_HEADS.NUM_CLASSES", "80", T::kInt, D2,
                 "object classes (background excluded) of GeneralizedRCNN"),
            1),
      differs(spec("MODEL.ROI_HEADS.IN_FEATURES", "[p2, p3, p4, p5]", T::kStringList, D2,
                   "FPN levels the ROI heads pool from: p2-p5"),
              "[res4]"),
      range(spec("MODEL.ROI_HEADS.IOU_THRESHOLDS", "[0.5]", T::kFloatList, D2,
                 "one threshold: foreground from it"),
            0, 1),
      only(spec("MODEL.ROI_HEADS.IOU_LABELS", "[0, 1]", T::kIntList, D2, "only [0, 1]"),
           {"[0, 1]"}),
      range(spec("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "512", T::kInt, D2,
                 "proposals sampled per image"),
            1),
      range(spec("MODEL.ROI_HEADS.POSITIVE_FRACTION", "0.25", T::kFloat, D2,
                 "of the sampled proposals"),
            0, 1),
      range(spec("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.05", T::kFloat, D2,
                 "detections below are dropped"),
            0, 1),
      range(spec("MODEL.ROI_HEADS.NMS_THRESH_TEST", "0.5", T::kFloat, D2, "per-class NMS IoU"), 0,
            1),
      only(spec("MODEL.ROI_HEADS.PROPOSAL_APPEND_GT", "true", T::kBool, D2, "only true"), {"true"}),

      differs(spec("MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", T::kString, D2,
                   "FastRCNNConvFCHead, or a box head registered with modeling::register_box_head "
                   "(checked when the model is built)"),
              "\"\""),
      only(spec("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE", "smooth_l1", T::kString, D2,
                "only smooth_l1"),
           {"smooth_l1"}),
      range(spec("MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT", "1.0", T::kFloat, D2,
                 "weight of loss_box_reg"),
            0),
      only(spec("MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS", "[10.0, 10.0, 5.0, 5.0]", T::kFloatList, D2,
                "only [10, 10, 5, 5]"),
           {"[10, 10, 5, 5]"}),
      differs(range(spec("MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA", "0.1111111111111111", T::kFloat, D2,
                         "smooth-L1 transition (torchvision's 1/9; 0 is L1)"),
                    0),
              "0.0"),
      differs(range(spec("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION", "7", T::kInt, D2,
                         "RoIAlign output size"),
                    1),
              "14"),
      differs(range(spec("MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO", "2", T::kInt, D2,
                         "samples per bin side; 0: adaptive"),
                    0),
              "0"),
      differs(only(spec("MODEL.ROI_BOX_HEAD.POOLER_TYPE", "ROIAlign", T::kString, D2,
                        "ROIAlign (torchvision) or ROIAlignV2 (half-pixel aligned)"),
                   {"ROIAlign", "ROIAlignV2"}),
              "ROIAlignV2"),
      differs(range(spec("MODEL.ROI_BOX_HEAD.NUM_FC", "2", T::kInt, D2,
                         "FC layers of the box head (2 and no conv: torchvision's TwoMLPHead)"),
                    0),
              "0"),
      range(spec("MODEL.ROI_BOX_HEAD.FC_DIM", "1024", T::kInt, D2, "width of the FC layers"), 1),
      range(spec("MODEL.ROI_BOX_HEAD.NUM_CONV", "0", T::kInt, D2,
                 "3x3 convs before the FCs (detectron2's 4conv1fc: 4, with NUM_FC 1)"),
            0),
      range(spec("MODEL.ROI_BOX_HEAD.CONV_DIM", "256", T::kInt, D2, "width of those convs"), 1),
      spec("MODEL.ROI_BOX_HEAD.NORM", "", T::kString, D2,
           "norm after each box-head conv: \"\", GN, BN, SyncBN, FrozenBN"),
      only(spec("MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG", "false", T::kBool, D2, "only false"),
           {"false"}),
      only(spec("MODEL.ROI_BOX_HEAD.TRAIN_ON_PRED_BOXES", "false", T::kBool, D2, "only false"),
           {"false"}),

      spec("MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead", T::kString, D2,
           "MaskRCNNConvUpsampleHead, or a mask head registered with modeling::register_mask_head "
           "(checked when the model is built)"),
      range(
          spec("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", "14", T::kInt, D2, "RoIAlign output size"),
          1),
      differs(range(spec("MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO", "2", T::kInt, D2,
                         "samples per bin side; 0: adaptive"),
                    0),
              "0"),
      differs(only(spec("MODEL.ROI_MASK_HEAD.POOLER_TYPE", "ROIAlign", T::kString, D2,
                        "ROIAlign (torchvision) or ROIAlignV2 (half-pixel aligned)"),
                   {"ROIAlign", "ROIAlignV2"}),
              "ROIAlignV2"),
      differs(range(spec("MODEL.ROI_MASK_HEAD.NUM_CONV", "4", T::kInt, D2, "3x3 convs"), 0), "0"),
      range(spec("MODEL.ROI_MASK_HEAD.CONV_DIM", "256", T::kInt, D2, "their width"), 1),
      spec("MODEL.ROI_MASK_HEAD.NORM", "", T::kString, D2,
           "norm after each mask-head conv: \"\", GN, BN, SyncBN, FrozenBN"),
      only(spec("MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", "false", T::kBool, D2, "only false"),
           {"false"}),

      range(spec("MODEL.RETINANET.NUM_CLASSES", "80", T::kInt, D2, "object classes of RetinaNet"),
            1),
      spec("MODEL.RETINANET.IN_FEATURES", "[p3, p4, p5, p6, p7]", T::kStringList, D2,
           "FPN levels the heads read: p3-p7"),
      range(spec("MODEL.RETINANET.NUM_CONVS", "4", T::kInt, D2, "convs in each tower"), 0),
      range(spec("MODEL.RETINANET.IOU_THRESHOLDS", "[0.4, 0.5]", T::kFloatList, D2,
                 "[background below, foreground from]"),
            0, 1),
      only(spec("MODEL.RETINANET.IOU_LABELS", "[0, -1, 1]", T::kIntList, D2, "only [0, -1, 1]"),
           {"[0, -1, 1]"}),
      range(spec("MODEL.RETINANET.PRIOR_PROB", "0.01", T::kFloat, D2,
                 "initial foreground probability of the classifier"),
            1e-6, 0.999999),
      range(spec("MODEL.RETINANET.SCORE_THRESH_TEST", "0.05", T::kFloat, D2,
                 "candidates below are dropped"),
            0, 1),
      range(spec("MODEL.RETINANET.TOPK_CANDIDATES_TEST", "1000", T::kInt, D2,
                 "candidates per level before NMS"),
            1),
      range(spec("MODEL.RETINANET.NMS_THRESH_TEST", "0.5", T::kFloat, D2, "per-class NMS IoU"), 0,
            1),
      only(spec("MODEL.RETINANET.BBOX_REG_WEIGHTS", "[1.0, 1.0, 1.0, 1.0]", T::kFloatList, D2,
                "only [1, 1, 1, 1]"),
           {"[1, 1, 1, 1]"}),
      range(spec("MODEL.RETINANET.FOCAL_LOSS_GAMMA", "2.0", T::kFloat, D2, "focusing"), 0),
      range(spec("MODEL.RETINANET.FOCAL_LOSS_ALPHA", "0.25", T::kFloat, D2, "class balance"), 0, 1),
      differs(range(spec("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA", "1.0", T::kFloat, D2,
                         "smooth-L1 transition of the box loss"),
                    0),
              "0.1"),
      only(spec("MODEL.RETINANET.BBOX_REG_LOSS_TYPE", "smooth_l1", T::kString, D2,
                "smooth_l1, l1 or giou"),
           {"smooth_l1", "l1", "giou"}),
      only(spec("MODEL.RETINANET.NORM", "", T::kString, D2, "only \"\": no norm in the heads"),
           {""}),

      range(spec("INPUT.MIN_SIZE_TRAIN", "[800]", T::kIntList, D2,
                 "shorter side in training: choices, or [min, max] with SAMPLING range"),
            1),
      only(spec("INPUT.MIN_SIZE_TRAIN_SAMPLING", "choice", T::kString, D2,
                "choice: one of MIN_SIZE_TRAIN per image; range: uniform in [min, max]"),
           {"choice", "range"}),
      range(spec("INPUT.MAX_SIZE_TRAIN", "1333", T::kInt, D2, "longer side cap, training"), 1),
      range(spec("INPUT.MIN_SIZE_TEST", "800", T::kInt, D2, "shorter side at inference"), 1),
      range(spec("INPUT.MAX_SIZE_TEST", "1333", T::kInt, D2, "longer side cap, inference"), 1),
      only(spec("INPUT.RANDOM_FLIP", "horizontal", T::kString, D2, "horizontal or none"),
           {"horizontal", "none"}),
      spec("INPUT.CROP.ENABLED", "false", T::kBool, D2,
           "training: a random crop of each image before the resize"),
      only(spec("INPUT.CROP.TYPE", "relative_range", T::kString, D2,
                "relative_range, relative, absolute or absolute_range"),
           {"relative_range", "relative", "absolute", "absolute_range"}),
      spec(
          "INPUT.CROP.SIZE", "[0.9, 0.9]", T::kFloatList, D2,
          "[height, width]: fractions (relative*) or pixels (absolute); absolute_range [min, max]"),
      differs(only(spec("INPUT.FORMAT", "RGB", T::kString, D2,
                        "only RGB (PIXEL_MEAN/STD are in RGB order)"),
                   {"RGB"}),
              "BGR"),
      only(spec("INPUT.MASK_FORMAT", "polygon", T::kString, D2,
                "only polygon (RLE masks are read too)"),
           {"polygon"}),
      range(spec("INPUT.SIZE_DIVISIBILITY", "32", T::kInt, OURS,
                 "batches are padded to a multiple of it"),
            1),
      range(spec("INPUT.MAX_IMAGE_PIXELS", std::to_string(kDefaultMaxImagePixels), T::kInt, OURS,
                 "annotations of images claiming more pixels are refused (no real image has that "
                 "many; a corrupt size must not be allocated)"),
            1, double(kMaxImagePixelsLimit)),

      spec("DATASETS.TRAIN", "[]", T::kStringList, D2,
           "a detectron2 dataset name (coco_2017_train, ...) under $DETECTRON2_DATASETS"),
      spec("DATASETS.TEST", "[]", T::kStringList, D2, "a detectron2 dataset name for evaluation"),
      only(spec("DATASETS.FORMAT", "coco", T::kString, OURS, "coco or openimages"),
           {"coco", "openimages"}),
      spec("DATASETS.TRAIN_ANNOTATIONS", "", T::kString, OURS,
           "COCO JSON or OpenImages boxes CSV (wins over DATASETS.TRAIN)"),
      spec("DATASETS.TRAIN_IMAGES", "", T::kString, OURS, "image folder of the training set"),
      spec("DATASETS.TEST_ANNOTATIONS", "", T::kString, OURS,
           "COCO JSON or OpenImages boxes CSV (wins over DATASETS.TEST)"),
      spec("DATASETS.TEST_IMAGES", "", T::kString, OURS, "image folder of the test set"),
      spec("DATASETS.CLASS_DESCRIPTIONS", "", T::kString, OURS, "OpenImages class CSV"),
      spec("DATASETS.TRAIN_IMAGE_LABELS", "", T::kString, OURS,
           "OpenImages verified image-level labels CSV (training)"),
      spec("DATASETS.TEST_IMAGE_LABELS", "", T::kString, OURS,
           "OpenImages verified image-level labels CSV (evaluation)"),
      spec("DATASETS.TEST_HIERARCHY", "", T::kString, OURS,
           "OpenImages class hierarchy JSON: the test boxes and labels are expanded along it "
           "before scoring, as the challenge does"),

      differs(range(spec("DATALOADER.NUM_WORKERS", "2", T::kInt, D2,
                         "decoding threads per rank (at most 256: each holds a decoded batch)"),
                    0, 256),
              "4"),
      spec("DATALOADER.ASPECT_RATIO_GROUPING", "true", T::kBool, D2,
           "batch portrait and landscape images apart"),
      only(spec("DATALOADER.SAMPLER_TRAIN", "TrainingSampler", T::kString, D2,
                "TrainingSampler, or RepeatFactorTrainingSampler (rare categories' images "
                "repeated, LVIS's rule)"),
           {"TrainingSampler", "RepeatFactorTrainingSampler"}),
      range(spec("DATALOADER.REPEAT_THRESHOLD", "0.0", T::kFloat, D2,
                 "RepeatFactorTrainingSampler: categories in fewer than this fraction of the "
                 "images are repeated (LVIS: 0.001)"),
            0, 1),
      spec("DATALOADER.REPEAT_SQRT", "true", T::kBool, D2,
           "RepeatFactorTrainingSampler: repeat sqrt(threshold / frequency) times, not the ratio"),
      spec("DATALOADER.FILTER_EMPTY_ANNOTATIONS", "true", T::kBool, D2,
           "skip training images without annotations"),
      range(spec("DATALOADER.PREFETCH", "4", T::kInt, OURS, "batches decoded ahead"), 1),
      spec("DATALOADER.PIN_MEMORY", "true", T::kBool, OURS,
           "page-locked batches (with MODEL.DEVICE cuda only)"),
      spec("DATALOADER.STRICT", "false", T::kBool, OURS,
           "fail on a bad image or annotation instead of skipping and counting it"),

      only(spec("SOLVER.LR_SCHEDULER_NAME", "WarmupMultiStepLR", T::kString, D2,
                "WarmupMultiStepLR, WarmupCosineLR, or our WarmupPolyLR"),
           {"WarmupMultiStepLR", "WarmupCosineLR", "WarmupPolyLR"}),
      differs(range(spec("SOLVER.MAX_ITER", "90000", T::kInt, D2, "iterations"), 1), "40000"),
      differs(range(spec("SOLVER.BASE_LR", "0.02", T::kFloat, D2,
                         "LR at IMS_PER_BATCH, or at REFERENCE_BATCH when that is set"),
                    0),
              "0.001"),
      range(spec("SOLVER.BASE_LR_END", "0.0", T::kFloat, D2,
                 "WarmupCosineLR's final LR, in BASE_LR's units"),
            0),
      range(spec("SOLVER.MOMENTUM", "0.9", T::kFloat, D2, "SGD and LARS momentum"), 0, 1),
      spec("SOLVER.NESTEROV", "false", T::kBool, D2, "Nesterov momentum (SGD)"),
      range(spec("SOLVER.WEIGHT_DECAY", "0.0001", T::kFloat, D2, "weight decay"), 0),
      range(spec("SOLVER.WEIGHT_DECAY_NORM", "0.0", T::kFloat, D2, "of norm layers' parameters"),
            0),
      range(
          spec("SOLVER.WEIGHT_DECAY_BIAS", "null", T::kFloat, D2, "of biases; null: WEIGHT_DECAY"),
          0),
      range(spec("SOLVER.GAMMA", "0.1", T::kFloat, D2, "WarmupMultiStepLR's factor per step"), 0),
      differs(range(spec("SOLVER.STEPS", "[60000, 80000]", T::kIntList, D2,
                         "iterations where WarmupMultiStepLR decays"),
                    0),
              "[30000]"),
      range(spec("SOLVER.WARMUP_FACTOR", "0.001", T::kFloat, D2, "LR factor at iteration 0"), 1e-12,
            1),
      range(spec("SOLVER.WARMUP_ITERS", "1000", T::kInt, D2, "warmup length"), 0),
      only(spec("SOLVER.WARMUP_METHOD", "linear", T::kString, D2,
                "linear, constant, or our exponential"),
           {"linear", "constant", "exponential"}),
      range(spec("SOLVER.CHECKPOINT_PERIOD", "5000", T::kInt, D2,
                 "iterations between checkpoints; 0: only at the end"),
            0),
      range(spec("SOLVER.IMS_PER_BATCH", "16", T::kInt, D2, "global batch over all ranks"), 1),
      range(spec("SOLVER.REFERENCE_WORLD_SIZE", "0", T::kInt, D2,
                 "ranks the recipe was written for; others scale batch, LR and schedule (0: "
                 "off)"),
            0),
      range(spec("SOLVER.BIAS_LR_FACTOR", "1.0", T::kFloat, D2, "LR factor of biases"), 0),
      spec("SOLVER.AMP.ENABLED", "false", T::kBool, D2,
           "mixed precision (autocast): fp16 or bf16 on CUDA, bf16 on the CPU"),
      only(spec("SOLVER.AMP.DTYPE", "fp16", T::kString, OURS, "fp16 (with loss scaling) or bf16"),
           {"fp16", "bf16"}),
      range(spec("SOLVER.AMP.INIT_SCALE", "65536.0", T::kFloat, OURS, "fp16 initial loss scale"),
            1e-30),
      range(spec("SOLVER.AMP.GROWTH_INTERVAL", "2000", T::kInt, OURS,
                 "fp16 steps without overflow before the scale doubles"),
            1),
      only(spec("SOLVER.OPTIMIZER", "sgd", T::kString, OURS, "sgd, adamw, lars, lamb or pmd_lamb"),
           {"sgd", "adamw", "lars", "lamb", "pmd_lamb"}),
      range(spec("SOLVER.IMS_PER_DEVICE", "2", T::kInt, OURS,
                 "images per forward/backward on a rank (micro-batch)"),
            1),
      range(spec("SOLVER.REFERENCE_BATCH", "0", T::kInt, OURS,
                 "batch BASE_LR is meant for; SCALING_RULE scales it to IMS_PER_BATCH (0: "
                 "BASE_LR is meant for IMS_PER_BATCH)"),
            0),
      only(spec("SOLVER.SCALING_RULE", "linear", T::kString, OURS,
                "linear, sqrt or none, from REFERENCE_BATCH to IMS_PER_BATCH"),
           {"linear", "sqrt", "none"}),
      spec("SOLVER.SCALE_SCHEDULE", "false", T::kBool, OURS,
           "shrink iteration counts by IMS_PER_BATCH / REFERENCE_BATCH (same epochs)"),
      spec("SOLVER.SCALE_WEIGHT_DECAY", "false", T::kBool, OURS,
           "with SCALE_SCHEDULE: scale the weight decays so that LR x decay x iterations stays "
           "the reference's (x sqrt(batch ratio) under the sqrt rule; docs/large_batch.md)"),
      spec("SOLVER.BETAS", "[0.9, 0.999]", T::kFloatList, OURS, "AdamW and LAMB betas"),
      range(spec("SOLVER.EPS", "1.0e-6", T::kFloat, OURS, "AdamW and LAMB epsilon"), 0),
      spec("SOLVER.CLIP_GRADIENTS.ENABLED", "false", T::kBool, D2,
           "clip gradients before every optimizer step (docs/solver.md)"),
      only(spec("SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "value", T::kString, D2,
                "value (each element), norm (each parameter) or full_model (all together)"),
           {"value", "norm", "full_model"}),
      range(spec("SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "1.0", T::kFloat, D2,
                 "the bound: element magnitude (value) or norm (norm, full_model)"),
            1e-12),
      range(spec("SOLVER.CLIP_GRADIENTS.NORM_TYPE", "2.0", T::kFloat, D2,
                 "p of the p-norm for norm and full_model"),
            1e-12),
      range(spec("SOLVER.POLY_POWER", "0.9", T::kFloat, OURS, "WarmupPolyLR's power"), 0),
      range(spec("SOLVER.LAMB.DECAY_PERIOD", "200", T::kInt, OURS,
                 "PMD-LAMB's period T in steps (docs/solver.md)"),
            1),
      only(spec("SOLVER.LAMB.DECAY_SHAPE", "linear", T::kString, OURS,
                "how the moment coefficient falls from 1 to 0 in a period"),
           {"linear", "cosine"}),
      spec("SOLVER.LAMB.DECAY_SECOND_MOMENT", "true", T::kBool, OURS,
           "decay the second moment too"),
      only(spec("SOLVER.LAMB.BIAS_CORRECTION", "normalized", T::kString, OURS,
                "normalized, global or none"),
           {"normalized", "global", "none"}),
      range(spec("SOLVER.LAMB.TRUST_CLIP", "0.0", T::kFloat, OURS,
                 "upper bound of the trust ratio (0: none)"),
            0),
      range(spec("SOLVER.LARS.TRUST_COEFFICIENT", "0.001", T::kFloat, OURS, "LARS eta"), 0),
      range(spec("SOLVER.LARS.EPS", "1.0e-8", T::kFloat, OURS, "LARS epsilon"), 0),
      spec("SOLVER.AGVM.ENABLED", "false", T::kBool, OURS,
           "AGVM: per-part LR factors from the gradient variance of two half-batches"),
      range(spec("SOLVER.AGVM.MOMENTUM", "0.97", T::kFloat, OURS,
                 "AGVM's momentum on its LR factors"),
            0, 0.999999),
      range(spec("SOLVER.AGVM.INTERVAL", "10", T::kInt, OURS,
                 "iterations between AGVM's variance estimates"),
            1),
      range(spec("SOLVER.AGVM.START_ITER", "null", T::kInt, OURS,
                 "AGVM's first estimate; null: when warmup ends (SOLVER.WARMUP_ITERS)"),
            0),
      range(spec("SOLVER.CHECKPOINTS_KEPT", "3", T::kInt, OURS, "newest checkpoints kept"), 1),
      range(spec("SOLVER.LOG_PERIOD", "20", T::kInt, OURS, "iterations between log lines"), 1),
      range(spec("SOLVER.MAX_BAD_STEPS", "10", T::kInt, OURS,
                 "non-finite steps in a row before the run stops"),
            1),

      range(spec("TEST.EVAL_PERIOD", "0", T::kInt, D2,
                 "iterations between evaluations; 0: none during training"),
            0),
      spec("TEST.PRECISE_BN.ENABLED", "false", T::kBool, D2,
           "recompute BN running statistics before each evaluation and at the end"),
      range(spec("TEST.PRECISE_BN.NUM_ITER", "200", T::kInt, D2,
                 "training micro-batches per rank that precise BN averages over"),
            1),
      range(spec("TEST.DETECTIONS_PER_IMAGE", "100", T::kInt, D2, "detections kept per image"), 1),
      only(spec("TEST.OID_PROTOCOL", "challenge", T::kString, OURS,
                "OpenImages metric: challenge (OpenImagesChallengeEvaluator) or v2 "
                "(OpenImagesDetectionEvaluator, the V2-V6 sets')"),
           {"challenge", "v2"}),

      spec("DISTRIBUTED.BACKEND", "auto", T::kString, OURS, "auto, nccl or gloo"),
      range(spec("DISTRIBUTED.TIMEOUT_SECONDS", "1800", T::kInt, OURS,
                 "collective timeout; a lost rank is named after it"),
            1),
      range(spec("DISTRIBUTED.BUCKET_SIZE_MB", "25", T::kInt, OURS, "gradient allreduce buckets"),
            1),
  };
}

std::vector<UnsupportedKey> make_unsupported() {
  const std::string proposals = "precomputed proposals are not supported: LargeDet runs its RPN";
  const std::string tta = "test-time augmentation is not implemented";
  return {
      {"MODEL.LOAD_PROPOSALS", "false", proposals},
      {"MODEL.KEYPOINT_ON", "false", "keypoint detection is not implemented"},
      {"MODEL.RESNETS.DEFORM_ON_PER_STAGE", "[false, false, false, false]",
       "deformable convolutions are not implemented"},
      {"MODEL.RESNETS.DEFORM_MODULATED", "false", "deformable convolutions are not implemented"},
      {"MODEL.RESNETS.DEFORM_NUM_GROUPS", "1", "deformable convolutions are not implemented"},
      {"MODEL.PROPOSAL_GENERATOR.MIN_SIZE", "0",
       "proposals are filtered at torchvision's 1e-3 px minimum"},
      {"MODEL.ANCHOR_GENERATOR.ANGLES", "[[-90, 0, 90]]", "rotated anchors are not implemented"},
      {"MODEL.ROI_BOX_CASCADE_HEAD", "", "Cascade R-CNN is not implemented"},
      {"MODEL.ROI_KEYPOINT_HEAD", "", "keypoint detection is not implemented"},
      {"MODEL.SEM_SEG_HEAD", "", "semantic segmentation is not implemented"},
      {"MODEL.PANOPTIC_FPN", "", "panoptic segmentation is not implemented"},
      {"DATASETS.PROPOSAL_FILES_TRAIN", "[]", proposals},
      {"DATASETS.PROPOSAL_FILES_TEST", "[]", proposals},
      {"DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TRAIN", "2000", proposals},
      {"DATASETS.PRECOMPUTED_PROPOSAL_TOPK_TEST", "1000", proposals},
      {"SOLVER.NUM_DECAYS", "3", "WarmupStepWithFixedGammaLR is not implemented"},
      {"SOLVER.RESCALE_INTERVAL", "false", "WarmupStepWithFixedGammaLR is not implemented"},
      {"TEST.EXPECTED_RESULTS", "[]", "expected-result checks are not implemented"},
      {"TEST.KEYPOINT_OKS_SIGMAS", "[]", "keypoint detection is not implemented"},
      {"TEST.AUG.ENABLED", "false", tta},
      {"TEST.AUG.MIN_SIZES", "[400, 500, 600, 700, 800, 900, 1000, 1100, 1200]", tta},
      {"TEST.AUG.MAX_SIZE", "4000", tta},
      {"TEST.AUG.FLIP", "true", tta},
      {"VIS_PERIOD", "0", "training visualisation is not implemented: use largedet infer"},
      {"GLOBAL", "", "detectron2's GLOBAL.HACK has no meaning here"},
  };
}

}  // namespace

const std::vector<KeySpec>& config_schema() {
  static const std::vector<KeySpec> schema = make_schema();
  return schema;
}

const std::vector<UnsupportedKey>& unsupported_detectron2_keys() {
  static const std::vector<UnsupportedKey> keys = make_unsupported();
  return keys;
}

const KeySpec* find_key_spec(const std::string& key) {
  static const std::map<std::string, const KeySpec*> index = [] {
    std::map<std::string, const KeySpec*> out;
    for (const auto& s : config_schema()) out[s.key] = &s;
    return out;
  }();
  auto it = index.find(key);
  return it == index.end() ? nullptr : it->second;
}

const UnsupportedKey* find_unsupported_key(const std::string& key) {
  for (const auto& u : unsupported_detectron2_keys()) {
    if (key == u.key) return &u;
    if (u.detectron2_default.empty() && key.rfind(u.key + ".", 0) == 0) return &u;
  }
  return nullptr;
}

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kBool:
      return "a boolean (true/false)";
    case ValueType::kInt:
      return "an integer";
    case ValueType::kFloat:
      return "a number";
    case ValueType::kString:
      return "a string";
    case ValueType::kIntList:
      return "a list of integers";
    case ValueType::kFloatList:
      return "a list of numbers";
    case ValueType::kStringList:
      return "a list of strings";
    case ValueType::kFloatLists:
      return "a list of lists of numbers";
  }
  return "a value";
}

}  // namespace largedet
