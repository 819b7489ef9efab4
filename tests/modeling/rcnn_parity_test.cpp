// Faster / Mask R-CNN against torchvision: identical weights (torchvision_fixtures.py through
// tools/convert_torchvision.py) and images give the same FPN levels, proposals, detections and
// training losses; parameter counts match; weights round-trip through safetensors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <map>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/modeling/detector.h"
#include "largedet/ops/autocast.h"
#include "largedet/ops/boxes.h"
#include "largedet/tensor/safetensors.h"
#include "modeling_test_util.h"

namespace largedet::modeling {
namespace {

using testing::count_params;
using testing::first_k_sampler;
using testing::max_abs_diff;

struct Fixture {
  safetensors::Contents io;
  std::map<std::string, torch::Tensor> weights;
  torch::Tensor get(const std::string& k) const {
    auto it = io.tensors.find(k);
    if (it == io.tensors.end()) throw Error("fixture has no tensor " + k);
    return it->second;
  }
  int64_t meta(const std::string& k) const { return std::stoll(io.metadata.at(k)); }
};

Fixture load_fixture(const std::string& dir) {
  // The fixture ran on one thread; oneDNN's convolutions sum in a thread-dependent order, so one
  // thread here too makes the features agree to the bit and the comparisons well-posed.
  at::set_num_threads(1);
  Fixture f;
  f.io = safetensors::load(dir + "/io.safetensors");
  f.weights = safetensors::load(dir + "/weights.safetensors").tensors;
  return f;
}

// torchvision's FasterRCNN / MaskRCNN defaults with the fixture's classes and sizes, inputs in
// 0..1 with torchvision's mean and std (so that normalisation is the same arithmetic).
RCNNOptions torchvision_options(const Fixture& f, bool mask_on) {
  RCNNOptions o;
  o.backbone.depth = 50;
  o.backbone.freeze_at = 2;
  o.roi_heads.num_classes = f.meta("num_classes");
  o.roi_heads.mask_on = mask_on;
  o.transform.min_size = f.meta("min_size");
  o.transform.max_size = f.meta("max_size");
  o.transform.pixel_mean = {0.485, 0.456, 0.406};
  o.transform.pixel_std = {0.229, 0.224, 0.225};
  return o;
}

std::vector<torch::Tensor> images(const Fixture& f) { return {f.get("image.0"), f.get("image.1")}; }

void check_eval_parity(const std::string& arch, bool mask_on) {
  LARGEDET_TORCHVISION_FIXTURE(dir, arch);
  torch::NoGradGuard no_grad;
  auto f = load_fixture(dir);
  GeneralizedRCNN model(torchvision_options(f, mask_on));
  auto report = load_state_dict(*model, f.weights, /*strict=*/true);
  EXPECT_TRUE(report.ok()) << report.str();
  EXPECT_EQ(count_params(*model), f.meta("params_frozen_bn"));
  model->eval();

  // Stage by stage, so that a mismatch says where it starts.
  auto batch = model->transform(images(f));
  auto features = model->backbone->forward(batch.tensor);
  ASSERT_EQ(features.size(), 5u);
  for (size_t l = 0; l < features.size(); ++l) {
    auto ref = f.get("feature." + std::to_string(l));
    ASSERT_EQ(features[l].sizes(), ref.sizes()) << "level " << l;
    EXPECT_LT(max_abs_diff(features[l], ref), 1e-4 * (1 + ref.abs().max().item<double>()))
        << "level " << l;
  }
  auto proposals =
      model->rpn->forward(features, {batch.tensor.size(2), batch.tensor.size(3)}, batch.image_sizes)
          .first.per_image();
  // For debugging a mismatch: LARGEDET_MODELING_DUMP=file.safetensors keeps our proposals.
  if (const char* dump = std::getenv("LARGEDET_MODELING_DUMP")) {
    safetensors::TensorMap m;
    for (size_t i = 0; i < proposals.size(); ++i)
      m["proposals." + std::to_string(i)] = proposals[i];
    safetensors::save(dump, m);
  }
  for (size_t i = 0; i < proposals.size(); ++i) {
    auto ref = f.get("proposals." + std::to_string(i));
    ASSERT_EQ(proposals[i].sizes(), ref.sizes()) << "image " << i;
    // Proposals with exactly equal scores may come in either order (torchvision sorts them
    // with an unstable sort): every proposal must be one of torchvision's (1e-3 px), and all but
    // a few in the same place.
    auto row_diff = (proposals[i] - ref).abs().amax(1);
    EXPECT_GE((row_diff < 1e-3).sum().item<int64_t>(), ref.size(0) * 99 / 100) << "image " << i;
    auto pairwise = (proposals[i].unsqueeze(1) - ref.unsqueeze(0)).abs().amax(2);  // [K, K]
    EXPECT_LT(std::get<0>(pairwise.min(1)).max().item<double>(), 1e-3) << "image " << i;
  }

  auto dets = model->detect(images(f));
  ASSERT_EQ(dets.size(), 2u);
  for (size_t i = 0; i < dets.size(); ++i) {
    auto s = std::to_string(i);
    auto ref_boxes = f.get("boxes." + s);
    ASSERT_EQ(dets[i].boxes.sizes(), ref_boxes.sizes()) << "image " << i;
    EXPECT_GT(ref_boxes.size(0), 10) << "the fixture should detect something";
    EXPECT_TRUE(torch::equal(dets[i].labels, f.get("labels." + s))) << "image " << i;
    EXPECT_LT(max_abs_diff(dets[i].boxes, ref_boxes), 1e-3) << "image " << i;
    EXPECT_LT(max_abs_diff(dets[i].scores, f.get("scores." + s)), 1e-4) << "image " << i;
    if (mask_on) {
      auto ref = f.get("masks." + s);
      ASSERT_EQ(dets[i].masks.sizes(), ref.sizes());
      double mad = (dets[i].masks - ref).abs().mean().item<double>();
      EXPECT_LT(mad, 1e-3) << "image " << i;
    }
  }
}

void check_loss_parity(const std::string& arch, bool mask_on) {
  LARGEDET_TORCHVISION_FIXTURE(dir, arch);
  auto f = load_fixture(dir);
  auto o = torchvision_options(f, mask_on);
  GeneralizedRCNN model(o);
  load_state_dict(*model, f.weights, true);
  model->rpn->sampler = first_k_sampler(o.rpn.batch_size_per_image, o.rpn.positive_fraction);
  model->roi_heads->sampler =
      first_k_sampler(o.roi_heads.batch_size_per_image, o.roi_heads.positive_fraction);
  model->train();
  std::vector<Target> targets;
  for (int i = 0; i < 2; ++i) {
    auto s = std::to_string(i);
    Target t{f.get("gt_boxes." + s), f.get("gt_labels." + s), {}};
    if (mask_on) t.masks = f.get("gt_masks." + s);
    targets.push_back(t);
  }
  auto losses = model->losses(images(f), targets);
  // Ours (detectron2's names) -> torchvision's, as the fixture stores them.
  std::vector<std::pair<std::string, std::string>> names = {{"loss_rpn_cls", "loss_objectness"},
                                                            {"loss_rpn_loc", "loss_rpn_box_reg"},
                                                            {"loss_cls", "loss_classifier"},
                                                            {"loss_box_reg", "loss_box_reg"}};
  if (mask_on) names.push_back({"loss_mask", "loss_mask"});
  EXPECT_EQ(losses.size(), names.size());
  torch::Tensor total = torch::zeros({});
  for (const auto& [n, theirs] : names) {
    ASSERT_TRUE(losses.count(n)) << n;
    double ref = f.get("loss." + theirs).item<double>();
    double got = losses[n].item<double>();
    EXPECT_NEAR(got, ref, 1e-4 * std::abs(ref) + 1e-7) << n;
    total = total + losses[n];
  }
  total.backward();  // the losses are differentiable end to end
  EXPECT_TRUE(model->roi_heads->box_head->named_parameters()["fc6.weight"].grad().defined());
  EXPECT_TRUE(model->backbone->body->layers[1]->parameters()[0].grad().defined());
  EXPECT_FALSE(model->backbone->body->conv1->weight.grad().defined());  // frozen stem
}

TEST(TorchvisionParity, FasterRCNNEval) { check_eval_parity("fasterrcnn", false); }
TEST(TorchvisionParity, FasterRCNNTrainingLosses) { check_loss_parity("fasterrcnn", false); }
TEST(TorchvisionParity, MaskRCNNEval) { check_eval_parity("maskrcnn", true); }
TEST(TorchvisionParity, MaskRCNNTrainingLosses) { check_loss_parity("maskrcnn", true); }

// bf16 autocast on the CPU, as `SOLVER.AMP.DTYPE: bf16` runs it: the features stay bf16 through
// the FrozenBN backbone and the FPN, and the proposals come out in float32, close to the float32
// run's. bf16's 8-bit mantissa, through the 50 layers of this randomly initialised network, moves
// them by a few pixels (measured: 94 % of the float32 proposals have a bf16 one at IoU >= 0.5,
// 72 % at 0.7, none at 0.99); fp16's criterion (99 % at 0.99) belongs to a GPU run.

TEST(TorchvisionParity, ProposalsUnderBf16AutocastAreTheFloatOnes) {
  LARGEDET_TORCHVISION_FIXTURE(dir, "fasterrcnn");
  torch::NoGradGuard no_grad;
  auto f = load_fixture(dir);
  GeneralizedRCNN model(torchvision_options(f, false));
  ASSERT_TRUE(load_state_dict(*model, f.weights, /*strict=*/true).ok());
  model->eval();
  auto batch = model->transform(images(f));
  const std::pair<int64_t, int64_t> padded = {batch.tensor.size(2), batch.tensor.size(3)};
  auto reference =
      model->rpn->forward(model->backbone->forward(batch.tensor), padded, batch.image_sizes)
          .first.per_image();
  std::vector<torch::Tensor> proposals;
  {
    ops::AutocastGuard autocast(true, at::kCPU, at::kBFloat16);
    auto features = model->backbone->forward(batch.tensor);
    for (const auto& level : features) EXPECT_EQ(level.scalar_type(), torch::kBFloat16);
    proposals = model->rpn->forward(features, padded, batch.image_sizes).first.per_image();
  }
  for (size_t i = 0; i < proposals.size(); ++i) {
    EXPECT_EQ(proposals[i].scalar_type(), torch::kFloat) << "image " << i;
    auto best = std::get<0>(ops::box_iou(reference[i], proposals[i]).max(1));
    auto kept = [&](double iou) { return (best >= iou).to(torch::kDouble).mean().item<double>(); };
    EXPECT_GE(kept(0.5), 0.90) << "image " << i;
    EXPECT_GE(kept(0.7), 0.65) << "image " << i;
    std::printf("image %zu: %.1f %% / %.1f %% of the float32 proposals kept at IoU >= 0.5 / 0.7\n",
                i, 100 * kept(0.5), 100 * kept(0.7));
  }
}

TEST(TorchvisionParity, ParameterCountOfTorchvisionBuilder) {
  LARGEDET_TORCHVISION_FIXTURE(dir, "fasterrcnn");
  auto f = load_fixture(dir);
  auto o = torchvision_options(f, false);
  o.backbone.norm = "BN";  // fasterrcnn_resnet50_fpn(weights_backbone=None) uses BatchNorm2d
  o.backbone.freeze_at = 0;
  GeneralizedRCNN model(o);
  EXPECT_EQ(count_params(*model), f.meta("params_builder_bn"));
  int64_t trainable = 0;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable += p.numel();
  EXPECT_EQ(trainable, f.meta("trainable_builder_bn"));
}

TEST(Weights, SaveLoadRoundTripAndStrictErrors) {
  RCNNOptions o;
  o.backbone.depth = 18;
  testing::narrow(o.backbone, 0.25);
  o.fpn_channels = 32;
  o.roi_heads.representation_size = 64;
  o.roi_heads.num_classes = 4;
  torch::manual_seed(1);
  GeneralizedRCNN a(o);
  torch::manual_seed(2);
  GeneralizedRCNN b(o);
  auto path = std::filesystem::temp_directory_path() /
              ("largedet_weights_" + std::to_string(::getpid()) + ".safetensors");
  save_weights(*a, path.string());
  auto report = load_weights(*b, path.string(), true);
  EXPECT_TRUE(report.ok()) << report.str();
  auto sa = state_dict(*a), sb = state_dict(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (auto& [k, v] : sa) EXPECT_TRUE(torch::equal(v, sb[k])) << k;

  o.roi_heads.num_classes = 6;
  GeneralizedRCNN c(o);
  auto loose = load_weights(*c, path.string(), false);
  ASSERT_EQ(loose.mismatched.size(), 4u) << loose.str();  // cls_score and bbox_pred
  EXPECT_NE(loose.str().find("roi_heads.box_predictor.cls_score.weight"), std::string::npos);
  try {
    load_weights(*c, path.string(), true);
    FAIL() << "strict load of mismatched shapes succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cls_score"), std::string::npos) << e.what();
  }
  auto tensors = safetensors::load(path.string()).tensors;
  tensors.erase("rpn.head.cls_logits.bias");
  tensors["extra.weight"] = torch::zeros({1});
  auto r = load_state_dict(*b, tensors, false);
  EXPECT_EQ(r.missing, std::vector<std::string>{"rpn.head.cls_logits.bias"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"extra.weight"});
  std::remove(path.c_str());
}

// detectron2's loss weights: loss_rpn_cls x LOSS_WEIGHT, loss_rpn_loc x LOSS_WEIGHT x
// BBOX_REG_LOSS_WEIGHT, loss_box_reg x ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT; the same model, seeds and
// inputs otherwise.
TEST(Detector, LossWeightKeysScaleTheirLosses) {
  auto losses = [](const std::vector<std::string>& weights) {
    auto config = Config::defaults();
    config.apply_overrides({"MODEL.RESNETS.DEPTH=18", "MODEL.RESNETS.STEM_OUT_CHANNELS=16",
                            "MODEL.RESNETS.WIDTH_PER_GROUP=16",
                            "MODEL.RESNETS.RES2_OUT_CHANNELS=16", "MODEL.FPN.OUT_CHANNELS=16",
                            "MODEL.ROI_BOX_HEAD.FC_DIM=32", "MODEL.ROI_HEADS.NUM_CLASSES=3",
                            "INPUT.MIN_SIZE_TEST=96", "INPUT.MAX_SIZE_TEST=128"});
    config.apply_overrides(weights);
    torch::manual_seed(0);
    auto det = build_detector(config);
    det->train();
    std::vector<torch::Tensor> ims = {torch::rand({3, 100, 120}) * 255};
    Target t{torch::tensor({{10.f, 10.f, 60.f, 50.f}, {30.f, 40.f, 90.f, 95.f}}),
             torch::tensor({1, 2}, torch::kLong),
             {}};
    std::map<std::string, double> out;
    for (auto& [k, v] : det->losses(ims, {t})) out[k] = v.item<double>();
    return out;
  };
  const auto base = losses({});
  const auto weighted = losses({"MODEL.RPN.LOSS_WEIGHT=2", "MODEL.RPN.BBOX_REG_LOSS_WEIGHT=3",
                                "MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT=0.5"});
  EXPECT_GT(base.at("loss_rpn_loc"), 0);
  EXPECT_GT(base.at("loss_box_reg"), 0);
  EXPECT_DOUBLE_EQ(weighted.at("loss_rpn_cls"), 2 * base.at("loss_rpn_cls"));
  EXPECT_NEAR(weighted.at("loss_rpn_loc"), 6 * base.at("loss_rpn_loc"),
              1e-6 * base.at("loss_rpn_loc"));
  EXPECT_DOUBLE_EQ(weighted.at("loss_box_reg"), 0.5 * base.at("loss_box_reg"));
  EXPECT_DOUBLE_EQ(weighted.at("loss_cls"), base.at("loss_cls"));
}

TEST(Detector, BuiltFromConfigTrainsAndDetectsOnNarrowNetwork) {
  auto config = Config::defaults();
  config.apply_overrides({"MODEL.RESNETS.DEPTH=18", "MODEL.RESNETS.STEM_OUT_CHANNELS=32",
                          "MODEL.RESNETS.WIDTH_PER_GROUP=32", "MODEL.RESNETS.RES2_OUT_CHANNELS=32",
                          "MODEL.FPN.OUT_CHANNELS=32", "MODEL.ROI_BOX_HEAD.FC_DIM=64",
                          "MODEL.ROI_HEADS.NUM_CLASSES=3", "MODEL.MASK_ON=true",
                          "MODEL.ROI_MASK_HEAD.CONV_DIM=16", "INPUT.MIN_SIZE_TEST=96",
                          "INPUT.MAX_SIZE_TEST=160", "MODEL.RESNETS.NORM=GN"});
  auto det = build_detector(config);
  auto* rcnn = dynamic_cast<GeneralizedRCNNImpl*>(det.get());
  ASSERT_NE(rcnn, nullptr);
  EXPECT_EQ(rcnn->roi_heads->options.num_classes, 4);
  torch::manual_seed(0);
  std::vector<torch::Tensor> ims = {torch::rand({3, 100, 120}) * 255,
                                    torch::rand({3, 90, 70}) * 255};
  Target t0{torch::tensor({{10.f, 10.f, 60.f, 50.f}}), torch::tensor({2}, torch::kLong),
            torch::zeros({1, 100, 120}, torch::kUInt8)};
  t0.masks.slice(1, 10, 50).slice(2, 10, 60).fill_(1);
  Target t1{torch::zeros({0, 4}), torch::zeros({0}, torch::kLong),
            torch::zeros({0, 90, 70}, torch::kUInt8)};  // an image without objects
  det->train();
  auto losses = det->losses(ims, {t0, t1});
  EXPECT_EQ(losses.size(), 5u);
  torch::Tensor total = torch::zeros({});
  for (auto& [k, v] : losses) {
    EXPECT_TRUE(std::isfinite(v.item<double>())) << k;
    total = total + v;
  }
  total.backward();
  det->eval();
  torch::NoGradGuard g;
  auto dets = det->detect(ims);
  ASSERT_EQ(dets.size(), 2u);
  EXPECT_EQ(dets[0].masks.size(2), 100);
  EXPECT_EQ(dets[1].masks.size(3), 70);
  EXPECT_LE(dets[0].boxes.size(0), 100);

  Target bad{torch::tensor({{10.f, 10.f, 5.f, 50.f}}), torch::tensor({1}, torch::kLong), {}};
  det->train();
  EXPECT_THROW(det->losses(std::vector<torch::Tensor>{ims[0]}, {bad}), Error);
  EXPECT_THROW(config.apply_overrides({"MODEL.META_ARCHITECTURE=CascadeRCNN"}), Error);
}

}  // namespace
}  // namespace largedet::modeling

namespace largedet::modeling {
namespace {

// tools/convert_torchvision.py --backbone on an ImageNet ResNet checkpoint (torch.save of a
// state_dict): the body loads by name into a detector, nothing unexpected, the values intact.
TEST(Weights, ConvertTorchvisionBackboneCheckpoint) {
  const std::string python = LARGEDET_PYTHON;
  if (python.empty() ||
      std::system(("\"" + python + "\" -c \"import torchvision\" > /dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "torchvision unavailable";
  auto base =
      std::filesystem::temp_directory_path() / ("largedet_convert_" + std::to_string(::getpid()));
  std::filesystem::create_directories(base);
  auto pth = (base / "r18.pth").string(), out = (base / "r18.safetensors").string();
  std::string make = "\"" + python +
                     "\" -c \"import torch, torchvision; torch.manual_seed(0); "
                     "torch.save(torchvision.models.resnet18().state_dict(), '" +
                     pth + "')\"";
  ASSERT_EQ(std::system(make.c_str()), 0);
  std::string convert = "\"" + python + "\" \"" + LARGEDET_SOURCE_DIR +
                        "/tools/convert_torchvision.py\" --backbone \"" + pth + "\" \"" + out +
                        "\" > /dev/null";
  ASSERT_EQ(std::system(convert.c_str()), 0);
  RCNNOptions o;
  o.backbone.depth = 18;
  o.backbone.norm = "BN";
  GeneralizedRCNN model(o);
  auto report = load_weights(*model, out, false);
  EXPECT_TRUE(report.unexpected.empty()) << report.str();
  EXPECT_TRUE(report.mismatched.empty()) << report.str();
  for (const auto& m : report.missing)
    EXPECT_EQ(m.rfind("backbone.body.", 0), std::string::npos) << m;
  auto file = safetensors::load(out).tensors;
  EXPECT_TRUE(
      torch::equal(model->backbone->body->conv1->weight, file.at("backbone.body.conv1.weight")));
  EXPECT_FALSE(file.count("backbone.body.fc.weight"));
  EXPECT_THROW(load_weights(*model, out, true), Error);  // the heads are missing
  std::system(("rm -rf \"" + base.string() + "\"").c_str());
}

}  // namespace
}  // namespace largedet::modeling

namespace largedet::modeling {
namespace {

// The one preprocessing path on the loader's 8-bit batches: each image's decoded region is
// normalised, resized to its size (torch's bilinear interpolate), mirrored where flipped, and the
// batch is zero-padded to SIZE_DIVISIBILITY, against a reference written with plain torch ops.
// torchvision's floor gives a 1 x 5000 image 0 rows (interpolate then fails); ours keeps one row,
// as training's resize does, and sizes that floor to at least 1 are torchvision's.
TEST(Transform, ThinImagesKeepAtLeastOnePixel) {
  Transform transform;
  transform.options.min_size = 96;
  transform.options.max_size = 128;
  EXPECT_EQ(transform.resized_size(1, 5000), (std::pair<int64_t, int64_t>{1, 128}));
  EXPECT_EQ(transform.resized_size(5000, 1), (std::pair<int64_t, int64_t>{128, 1}));
  EXPECT_EQ(transform.resized_size(480, 640), (std::pair<int64_t, int64_t>{96, 128}));
  const auto batch = transform(std::vector<torch::Tensor>{torch::rand({3, 1, 5000}) * 255});
  EXPECT_EQ(batch.image_sizes[0], (std::pair<int64_t, int64_t>{1, 128}));
}

TEST(Transform, LoaderBatchesAreNormalisedResizedMirroredAndPadded) {
  Transform transform;
  transform.options.pixel_mean = {100, 110, 120};
  transform.options.pixel_std = {2, 4, 8};
  transform.options.size_divisible = 32;
  torch::manual_seed(3);
  data::Batch batch;
  batch.images = torch::randint(0, 256, {2, 3, 30, 41}, torch::kByte);
  batch.decoded_sizes = {{30, 41}, {23, 17}};
  batch.image_sizes = {{45, 61}, {23, 17}};  // the first is resized, the second is not
  batch.flipped = {true, false};
  batch.image_ids = {1, 2};
  batch.targets.resize(2);
  const ImageList out = transform(batch);
  ASSERT_EQ(out.tensor.sizes(), (torch::IntArrayRef{2, 3, 64, 64}));
  EXPECT_EQ(out.image_sizes, (ImageSizes{{45, 61}, {23, 17}}));
  const auto mean = torch::tensor({100.f, 110.f, 120.f}).view({3, 1, 1});
  const auto std = torch::tensor({2.f, 4.f, 8.f}).view({3, 1, 1});
  for (int64_t i = 0; i < 2; ++i) {
    const auto [h, w] = batch.decoded_sizes[i];
    const auto [oh, ow] = batch.image_sizes[i];
    auto expected = (batch.images[i].slice(1, 0, h).slice(2, 0, w).to(torch::kFloat) - mean) / std;
    expected = torch::nn::functional::interpolate(expected.unsqueeze(0),
                                                  torch::nn::functional::InterpolateFuncOptions()
                                                      .size(std::vector<int64_t>{oh, ow})
                                                      .mode(torch::kBilinear)
                                                      .align_corners(false))[0];
    if (batch.flipped[i]) expected = expected.flip({2});
    const auto valid = out.tensor[i].slice(1, 0, oh).slice(2, 0, ow);
    EXPECT_LT(max_abs_diff(valid, expected), 1e-5) << i;
    EXPECT_EQ(out.tensor[i].slice(1, oh).abs().max().item<float>(), 0.f) << i;
    EXPECT_EQ(out.tensor[i].slice(2, ow).abs().max().item<float>(), 0.f) << i;
  }
  batch.flipped.pop_back();
  EXPECT_THROW(transform(batch), Error);  // a flip per image
}

// The loader's data::Batch and raw images go through the same preprocessing: equal detections,
// mapped back to the original sizes; training on the batch gives finite losses.
TEST(Detector, LoaderBatchesAndRawImagesGiveTheSameDetections) {
  RCNNOptions o;
  o.backbone.depth = 18;
  testing::narrow(o.backbone, 0.25);
  o.fpn_channels = 32;
  o.roi_heads.representation_size = 64;
  o.roi_heads.num_classes = 3;
  o.roi_heads.score_thresh = 0.0;
  o.transform.min_size = 96;  // torchvision's rule doubles both images below
  torch::manual_seed(0);
  GeneralizedRCNN model(o);
  std::vector<torch::Tensor> raw = {torch::randint(0, 256, {3, 48, 64}, torch::kByte),
                                    torch::randint(0, 256, {3, 48, 60}, torch::kByte)};
  data::Batch batch;
  batch.images = torch::zeros({2, 3, 48, 64}, torch::kByte);
  batch.images[1].slice(2, 0, 60).copy_(raw[1]);
  batch.images[0].copy_(raw[0]);
  batch.decoded_sizes = {{48, 64}, {48, 60}};
  batch.image_sizes = {{96, 128}, {96, 120}};
  batch.original_sizes = batch.decoded_sizes;
  batch.flipped = {false, false};
  batch.image_ids = {1, 2};
  for (int i = 0; i < 2; ++i) {
    data::Target t;
    t.boxes = torch::tensor({{10.f, 12.f, 50.f, 60.f}});
    t.labels = torch::tensor({1 + i}, torch::kLong);
    batch.targets.push_back(t);
  }
  model->train();
  auto losses = model->forward(batch);
  EXPECT_EQ(losses.size(), 4u);
  for (auto& [k, v] : losses) EXPECT_TRUE(std::isfinite(v.item<double>())) << k;
  model->eval();
  torch::NoGradGuard g;
  auto a = model->detect(batch);
  auto b = model->detect(raw);
  ASSERT_EQ(a.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    ASSERT_GT(a[i].boxes.size(0), 0);
    ASSERT_EQ(a[i].boxes.sizes(), b[i].boxes.sizes());
    EXPECT_TRUE(torch::equal(a[i].boxes, b[i].boxes)) << i;
    EXPECT_TRUE(torch::equal(a[i].scores, b[i].scores)) << i;
    EXPECT_LE(a[i].boxes.select(1, 2).max().item<float>(), batch.original_sizes[i][1]);
  }
}

}  // namespace
}  // namespace largedet::modeling
