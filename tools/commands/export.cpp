// largedet export --format torchvision: a trained model's weights as a state_dict that
// torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn / retinanet_resnet50_fpn (and their
// ResNet-101 variants built with resnet_fpn_backbone) load with load_state_dict(strict=True), and
// the torchvision call that builds the matching model. Our parameter names are torchvision's
// (docs/modeling.md), so the export is a check of the architecture plus a copy: what torchvision
// cannot build is refused by key. From there torchvision's own ONNX export and TorchServe apply.
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "command_registry.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/engine/runtime.h"
#include "largedet/modeling/detector.h"

namespace {

struct ExportArgs {
  std::string config, weights, output, format = "torchvision";
  std::vector<std::string> overrides;
};

// The recipe keys that decide the architecture, with what torchvision's constructors build.
struct Rule {
  const char* key;
  std::vector<std::string> allowed;
  bool applies_to_rcnn = true, applies_to_retinanet = true, mask_only = false;
};

const std::vector<Rule>& torchvision_rules() {
  static const std::vector<Rule> rules = {
      {"MODEL.RESNETS.DEPTH", {"50", "101"}},
      {"MODEL.RESNETS.STEM_OUT_CHANNELS", {"64"}},
      {"MODEL.RESNETS.RES2_OUT_CHANNELS", {"256"}},
      {"MODEL.RESNETS.WIDTH_PER_GROUP", {"64"}},
      {"MODEL.RESNETS.NUM_GROUPS", {"1"}},
      {"MODEL.RESNETS.STRIDE_IN_1X1", {"false"}},
      // Batch statistics become torchvision's FrozenBatchNorm2d, which is what BN does in eval.
      {"MODEL.RESNETS.NORM", {"FrozenBN", "BN", "SyncBN"}},
      {"MODEL.FPN.OUT_CHANNELS", {"256"}},
      {"MODEL.FPN.NORM", {""}},
      {"MODEL.ROI_BOX_HEAD.NUM_CONV", {"0"}, true, false},
      {"MODEL.ROI_BOX_HEAD.NUM_FC", {"2"}, true, false},
      {"MODEL.ROI_BOX_HEAD.FC_DIM", {"1024"}, true, false},
      {"MODEL.ROI_BOX_HEAD.NORM", {""}, true, false},
      {"MODEL.ROI_MASK_HEAD.NUM_CONV", {"4"}, true, false, true},
      {"MODEL.ROI_MASK_HEAD.CONV_DIM", {"256"}, true, false, true},
      {"MODEL.ROI_MASK_HEAD.NORM", {""}, true, false, true},
      {"MODEL.RETINANET.NUM_CONVS", {"4"}, false, true},
  };
  return rules;
}

// The value as the rules spell it, whatever the key's type.
std::string value_text(const largedet::Config& config, const std::string& key) {
  if (key == "MODEL.RESNETS.STRIDE_IN_1X1") return config.get<bool>(key) ? "true" : "false";
  if (key.find("NORM") != std::string::npos) return config.get<std::string>(key);
  return std::to_string(config.get<int64_t>(key));
}

void check_torchvision_architecture(const largedet::Config& config, bool retinanet, bool mask) {
  std::string problems;
  for (const Rule& rule : torchvision_rules()) {
    if ((retinanet && !rule.applies_to_retinanet) || (!retinanet && !rule.applies_to_rcnn) ||
        (rule.mask_only && !mask))
      continue;
    const std::string value = value_text(config, rule.key);
    if (std::find(rule.allowed.begin(), rule.allowed.end(), value) != rule.allowed.end()) continue;
    std::string allowed;
    for (const auto& a : rule.allowed) allowed += (allowed.empty() ? "" : " or ") + ("'" + a + "'");
    problems +=
        "\n  " + std::string(rule.key) + " is '" + value + "', torchvision builds " + allowed;
  }
  if (!problems.empty()) {
    throw largedet::Error(
        "torchvision's detection models cannot hold this architecture:" + problems,
        "largedet export --format torchvision",
        "export a model whose recipe builds torchvision's architecture "
        "(configs/COCO-Detection/*_R_{50,101}_FPN_*.yaml)");
  }
}

std::string python_list(const std::vector<double>& values, double scale) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i] / scale;
  out << "]";
  return out.str();
}

// The torchvision call that builds the model these weights belong to, with the recipe's test-time
// settings (torchvision's inputs are RGB in [0, 1], ours 0..255: mean and std divided by 255).
std::string torchvision_snippet(const largedet::Config& c, bool retinanet, bool mask,
                                const std::string& path) {
  const auto depth = c.get<int64_t>("MODEL.RESNETS.DEPTH");
  // torchvision counts a background class in both (RetinaNet never predicts it).
  const std::string num_classes = std::to_string(
      c.get<int64_t>(retinanet ? "MODEL.RETINANET.NUM_CLASSES" : "MODEL.ROI_HEADS.NUM_CLASSES") +
      1);
  std::ostringstream s;
  s << "import torch, torchvision\n"
    << "from torchvision.models.detection import "
    << (retinanet ? "RetinaNet"
        : mask    ? "MaskRCNN"
                  : "FasterRCNN")
    << "\n"
    << "from torchvision.models.detection.backbone_utils import resnet_fpn_backbone\n";
  if (retinanet) s << "from torchvision.ops.feature_pyramid_network import LastLevelP6P7\n";
  s << "backbone = resnet_fpn_backbone(backbone_name='resnet" << depth
    << "', weights=None, trainable_layers=0";
  if (retinanet) s << ", returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256)";
  s << ")\n"
    << "model = "
    << (retinanet ? "RetinaNet"
        : mask    ? "MaskRCNN"
                  : "FasterRCNN")
    << "(backbone, " << num_classes << ", min_size=" << c.get<int64_t>("INPUT.MIN_SIZE_TEST")
    << ", max_size=" << c.get<int64_t>("INPUT.MAX_SIZE_TEST")
    << ", image_mean=" << python_list(c.get<std::vector<double>>("MODEL.PIXEL_MEAN"), 255)
    << ", image_std=" << python_list(c.get<std::vector<double>>("MODEL.PIXEL_STD"), 255);
  if (retinanet) {
    s << ", score_thresh=" << c.get<double>("MODEL.RETINANET.SCORE_THRESH_TEST")
      << ", nms_thresh=" << c.get<double>("MODEL.RETINANET.NMS_THRESH_TEST");
  } else {
    s << ", box_score_thresh=" << c.get<double>("MODEL.ROI_HEADS.SCORE_THRESH_TEST")
      << ", box_nms_thresh=" << c.get<double>("MODEL.ROI_HEADS.NMS_THRESH_TEST");
  }
  s << ", detections_per_img=" << c.get<int64_t>("TEST.DETECTIONS_PER_IMAGE")
    << ")\n"
    // LibTorch's pickler tags the dict's type with a function torch.load's weights-only mode
    // does not know; allowing it keeps that mode.
    << "import torch.jit._pickle\n"
    << "with torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag]):\n"
    << "    state = torch.load('" << path << "')\n"
    << "model.load_state_dict(state, strict=True)\n"
    << "model.eval()  # inputs: a list of [3, H, W] RGB tensors in [0, 1]\n";
  return s.str();
}

void export_torchvision(const ExportArgs& args) {
  auto config = largedet::Config::from_file(args.config, args.overrides);
  largedet::engine::resolve_recipe(config, 1);
  const bool retinanet = config.get<std::string>("MODEL.META_ARCHITECTURE") == "RetinaNet";
  const bool mask = !retinanet && config.get<bool>("MODEL.MASK_ON");
  check_torchvision_architecture(config, retinanet, mask);
  // Loading into our model checks that every tensor is there with its shape.
  auto model = largedet::engine::load_detector(config, args.weights, c10::Device(c10::kCPU));
  c10::Dict<std::string, at::Tensor> state;
  for (const auto& p : model->named_parameters()) state.insert(p.key(), p.value().detach());
  for (const auto& b : model->named_buffers()) {
    // BatchNorm's step counter: torchvision's FrozenBatchNorm2d has none.
    const std::string& name = b.key();
    if (name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0)
      continue;
    state.insert(name, b.value().detach());
  }
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(state));
  largedet::write_file_atomic(args.output, std::string(bytes.begin(), bytes.end()));
  std::cout << "wrote " << state.size() << " tensors to " << args.output
            << " (a state_dict for torch.load). The torchvision model they belong to:\n\n"
            << torchvision_snippet(config, retinanet, mask, args.output);
}

void setup_export(CLI::App& cmd) {
  auto args = std::make_shared<ExportArgs>();
  cmd.add_option("--config,-c", args->config, "the recipe the weights were trained with")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--weights,-w", args->weights, "checkpoint or model_final.safetensors")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--output,-o", args->output, "the state_dict file to write (.pth)")->required();
  cmd.add_option("--format", args->format, "torchvision")
      ->check(CLI::IsMember({"torchvision"}))
      ->capture_default_str();
  cmd.add_option("overrides", args->overrides, "KEY=VALUE overrides of the recipe");
  cmd.callback([args] { export_torchvision(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("export",
                          "Write a trained model's weights for another framework: torchvision's "
                          "detection models (load_state_dict strict), with the call that builds "
                          "the model",
                          setup_export);
