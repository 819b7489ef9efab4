// The ROI heads' layer stacks against torchvision's own modules: the same parameter names and
// shapes (so checkpoints load by name) and the same function given the same weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "common/shell.h"
#include "largedet/core/error.h"
#include "largedet/core/safetensors.h"
#include "largedet/modeling/roi_head_layers.h"
#include "modeling_test_util.h"

namespace largedet::modeling {
namespace {

// Saves torchvision's module built by `ctor` (random weights and statistics), an input and its
// output to `path`; false when the venv has no torchvision.
bool torchvision_module(const std::string& ctor, const std::string& path) {
  const std::string script =
      "import torch, torchvision\n"
      "from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, TwoMLPHead\n"
      "from torchvision.models.detection.mask_rcnn import MaskRCNNHeads\n"
      "import sys; sys.path.insert(0, '" LARGEDET_SOURCE_DIR
      "/tools')\n"
      "from convert_torchvision import write_safetensors\n"
      "torch.manual_seed(0)\n"
      "m = " +
      ctor +
      ".eval()\n"
      "for name, p in m.named_parameters(): p.data.normal_(0, 0.05)\n"
      "for name, b in m.named_buffers():\n"
      "    if b.is_floating_point(): b.data.uniform_(0.5, 1.5)\n"
      "x = torch.randn(3, 8, 5, 5)\n"
      "t = {k: v.contiguous() for k, v in m.state_dict().items() if 'num_batches' not in k}\n"
      "t['__input__'] = x\n"
      "with torch.no_grad(): t['__output__'] = m(x).contiguous()\n"
      "write_safetensors('" +
      path + "', t)\n";
  const auto check =
      test::run_shell(std::string(LARGEDET_PYTHON) + " -c 'import torchvision' 2>&1");
  if (check.code != 0) return false;
  const auto run = test::run_shell(std::string(LARGEDET_PYTHON) + " -c " + test::quote(script));
  EXPECT_EQ(run.code, 0) << run.output;
  return run.code == 0;
}

void expect_same_as_torchvision(torch::nn::Sequential ours, const std::string& ctor,
                                const std::string& name) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("largedet_" + name + "_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  if (!torchvision_module(ctor, path)) GTEST_SKIP() << "torchvision missing";
  auto theirs = safetensors::load(path).tensors;
  std::filesystem::remove(path);
  const auto input = theirs.at("__input__"), expected = theirs.at("__output__");
  theirs.erase("__input__");
  theirs.erase("__output__");
  std::map<std::string, torch::Tensor> own;
  for (const auto& p : ours->named_parameters()) own[p.key()] = p.value();
  for (const auto& b : ours->named_buffers())
    if (b.key().find("num_batches") == std::string::npos) own[b.key()] = b.value();
  ASSERT_EQ(own.size(), theirs.size());
  torch::NoGradGuard no_grad;
  for (auto& [key, tensor] : own) {
    ASSERT_TRUE(theirs.count(key)) << name << ": torchvision has no " << key;
    ASSERT_EQ(tensor.sizes(), theirs[key].sizes()) << key;
    tensor.copy_(theirs[key]);
  }
  ours->eval();
  EXPECT_TRUE(torch::allclose(ours->forward(input), expected, 1e-5, 1e-6)) << name;
}

TEST(RoIHeadLayers, TwoMLPHeadIsTorchvisions) {
  expect_same_as_torchvision(make_box_head(BoxHeadOptions(8, 5).fc_dim(16)),
                             "TwoMLPHead(8 * 5 * 5, 16)", "two_mlp");
}

TEST(RoIHeadLayers, FourConvOneFcWithNormIsTorchvisionsFastRCNNConvFCHead) {
  expect_same_as_torchvision(
      make_box_head(BoxHeadOptions(8, 5).num_conv(4).conv_dim(6).num_fc(1).fc_dim(16).norm("BN")),
      "FastRCNNConvFCHead((8, 5, 5), [6, 6, 6, 6], [16], norm_layer=torch.nn.BatchNorm2d)",
      "conv_fc");
}

TEST(RoIHeadLayers, MaskHeadWithAndWithoutNormIsTorchvisions) {
  expect_same_as_torchvision(make_mask_head(8, {6, 6}, ""), "MaskRCNNHeads(8, [6, 6], 1)", "mask");
  expect_same_as_torchvision(make_mask_head(8, {6, 6}, "BN"),
                             "MaskRCNNHeads(8, [6, 6], 1, norm_layer=torch.nn.BatchNorm2d)",
                             "mask_bn");
}

TEST(RoIHeadLayers, OutputWidthAndEmptyHead) {
  EXPECT_EQ(box_head_out_channels(BoxHeadOptions(8, 5).num_conv(2).conv_dim(6).num_fc(0)),
            6 * 5 * 5);
  EXPECT_EQ(box_head_out_channels(BoxHeadOptions(8, 5).fc_dim(32)), 32);
  EXPECT_THROW(make_box_head(BoxHeadOptions(8, 5).num_fc(0)), Error);
}

}  // namespace
}  // namespace largedet::modeling
