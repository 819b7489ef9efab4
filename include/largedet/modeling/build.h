// Detectors built from the configuration (MODEL.*, INPUT.*_TEST, TEST.*, SEED): the architecture
// by MODEL.META_ARCHITECTURE, the options of each part, and the checks of what LargeDet builds.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "largedet/modeling/meta_arch/detector.h"
#include "largedet/modeling/meta_arch/generalized_rcnn.h"
#include "largedet/modeling/meta_arch/retinanet.h"

namespace largedet {
class Config;
}

namespace largedet::modeling {

// MODEL.META_ARCHITECTURE: GeneralizedRCNN (MODEL.MASK_ON picks Mask R-CNN) or RetinaNet;
// MODEL.ROI_HEADS.NUM_CLASSES or MODEL.RETINANET.NUM_CLASSES counts the object classes
// (background excluded), INPUT.*_TEST sizes. The heads come from their registries by
// MODEL.ROI_BOX_HEAD.NAME and MODEL.ROI_MASK_HEAD.NAME (roi_heads/box_head.h, mask_head.h).
std::shared_ptr<DetectorImpl> build_detector(const Config& config);
RCNNOptions rcnn_options_from_config(const Config& config);
RetinaNetOptions retinanet_options_from_config(const Config& config);
// Gives the keys that depend on the architecture (MODEL.BACKBONE.NAME, MODEL.RESNETS.OUT_FEATURES,
// MODEL.FPN.IN_FEATURES, the heads' IN_FEATURES) the architecture's value where nothing set them,
// and refuses values LargeDet does not build, naming the key and the value to write.
void resolve_architecture(Config& config);
// [background below, foreground from] of a matcher's IOU_THRESHOLDS key, checked.
std::pair<double, double> iou_thresholds(const Config& config, const std::string& key);
// The key that holds the number of classes for the recipe's architecture.
std::string num_classes_key(const Config& config);

}  // namespace largedet::modeling
