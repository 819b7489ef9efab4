// Norm factory, ResNet (torchvision layout, parameter counts, freezing, width) and FPN.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"
#include "largedet/modeling/backbone/fpn.h"
#include "largedet/modeling/backbone/norm.h"
#include "largedet/modeling/backbone/resnet.h"
#include "modeling_test_util.h"

namespace largedet::modeling {
namespace {

using testing::count_params;

TEST(Norms, FrozenBatchNormMatchesBatchNormInEval) {
  torch::manual_seed(0);
  FrozenBatchNorm2d frozen(8);
  torch::nn::BatchNorm2d bn(8);
  bn->running_mean.uniform_(-1, 1);
  bn->running_var.uniform_(0.5, 2);
  {
    torch::NoGradGuard g;
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.uniform_(-1, 1);
  }
  frozen->weight.copy_(bn->weight.detach());
  frozen->bias.copy_(bn->bias.detach());
  frozen->running_mean.copy_(bn->running_mean);
  frozen->running_var.copy_(bn->running_var);
  bn->eval();
  auto x = torch::randn({2, 8, 5, 5});
  EXPECT_TRUE(torch::allclose(frozen->forward(x), bn->forward(x), 1e-5, 1e-6));
  EXPECT_EQ(frozen->parameters().size(), 0u);  // all buffers
  EXPECT_EQ(frozen->buffers().size(), 4u);
}

TEST(Norms, FactoryBuildsEachNormByName) {
  auto x = torch::randn({4, 64, 3, 3});
  for (const char* name : {"FrozenBN", "BN", "GN", "SyncBN"}) {
    auto m = make_norm(name, 64);
    ASSERT_FALSE(m.is_empty()) << name;
    EXPECT_EQ(m.forward(x).sizes(), x.sizes()) << name;
  }
  EXPECT_TRUE(make_norm("", 64).is_empty());
  EXPECT_NE(make_norm("SyncBN", 64).ptr()->as<distributed::SyncBatchNorm2dImpl>(), nullptr);
  EXPECT_NE(make_norm("GN", 64).ptr()->as<torch::nn::GroupNormImpl>(), nullptr);
}

TEST(Norms, SyncBNWithoutGroupEqualsBatchNormInTraining) {
  torch::manual_seed(0);
  auto sync = make_norm("SyncBN", 16);
  auto bn = make_norm("BN", 16);
  auto x = torch::randn({3, 16, 4, 4}) * 3 + 1;
  EXPECT_TRUE(torch::allclose(sync.forward(x), bn.forward(x), 1e-5, 1e-5));
}

TEST(Norms, UnknownNameListsTheRegisteredOnes) {
  try {
    make_norm("SynchBN", 8);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("SynchBN"), std::string::npos);
    EXPECT_NE(e.hint().find("SyncBN"), std::string::npos);
  }
}

TEST(Norms, RegisteredNormReachesTheBackboneByName) {
  static int built = 0;  // static: the registry outlives this test
  register_norm("CountingBN", [](int64_t c) {
    ++built;
    return torch::nn::AnyModule(torch::nn::BatchNorm2d(c));
  });
  ResNetOptions o;
  o.depth = 18;
  o.norm = "CountingBN";
  testing::narrow(o, 0.25);
  ResNet net(o);
  // stem 1 + 8 blocks x 2 + 3 downsamples
  EXPECT_EQ(built, 1 + 16 + 3);
}

TEST(ResNet, ParameterCountsEqualTorchvision) {
  // torchvision.models.resnetXX() without the fc layer (1000 classes), BatchNorm2d.
  const std::pair<int64_t, int64_t> expected[] = {{18, 11689512 - 513000},
                                                  {34, 21797672 - 513000},
                                                  {50, 25557032 - 2049000},
                                                  {101, 44549160 - 2049000}};
  for (auto [depth, count] : expected) {
    ResNetOptions o;
    o.depth = depth;
    o.norm = "BN";
    ResNet net(o);
    EXPECT_EQ(count_params(*net), count) << "ResNet-" << depth;
  }
}

TEST(ResNet, TorchvisionLayoutNamesAndStrides) {
  ResNetOptions o;
  o.depth = 50;
  testing::narrow(o, 0.25);
  ResNet net(o);
  auto params = net->named_parameters();
  auto buffers = net->named_buffers();
  EXPECT_TRUE(params.contains("conv1.weight"));
  EXPECT_TRUE(params.contains("layer2.0.conv2.weight"));
  EXPECT_TRUE(params.contains("layer4.2.conv3.weight"));
  EXPECT_TRUE(params.contains("layer1.0.downsample.0.weight"));
  EXPECT_TRUE(buffers.contains("layer1.0.downsample.1.running_var"));
  EXPECT_TRUE(buffers.contains("bn1.weight"));  // FrozenBN: buffers
  // Stride on the 3x3 conv (torchvision / "ResNet v1.5"), not on the 1x1.
  EXPECT_EQ(params["layer2.0.conv1.weight"].size(2), 1);
  EXPECT_EQ(net->layers[1][0]->as<ResNetBlockImpl>()->conv2->options.stride()->at(0), 2);
  EXPECT_EQ(net->layers[1][0]->as<ResNetBlockImpl>()->conv1->options.stride()->at(0), 1);
  auto out = net->forward(torch::randn({1, 3, 64, 96}));
  ASSERT_EQ(out.size(), 4u);
  const int64_t channels[] = {64, 128, 256, 512};  // 0.25 x (256, 512, 1024, 2048)
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].size(1), channels[i]);
    EXPECT_EQ(out[i].size(2), 64 >> (i + 2));
    EXPECT_EQ(out[i].size(3), 96 >> (i + 2));
  }
}

TEST(ResNet, FreezeAtFreezesStemAndStages) {
  for (int64_t freeze_at : {0, 1, 2, 5}) {
    ResNetOptions o;
    o.depth = 18;
    o.norm = "BN";
    testing::narrow(o, 0.25);
    o.freeze_at = freeze_at;
    ResNet net(o);
    for (const auto& p : net->named_parameters()) {
      const auto& k = p.key();
      int stage = (k.rfind("conv1", 0) == 0 || k.rfind("bn1", 0) == 0) ? 1 : (k[5] - '0') + 1;
      EXPECT_EQ(p.value().requires_grad(), stage > freeze_at) << k << " freeze_at " << freeze_at;
    }
  }
}

TEST(ResNet, BasicBlockAndBadDepth) {
  ResNetOptions o;
  o.depth = 34;
  testing::narrow(o, 0.5);
  o.returned_layers = {2, 3, 4};
  ResNet net(o);
  EXPECT_EQ(net->out_channels(), (std::vector<int64_t>{64, 128, 256}));
  EXPECT_EQ(net->forward(torch::randn({1, 3, 64, 64})).size(), 3u);
  o.depth = 42;
  EXPECT_THROW(ResNet{o}, Error);
}

TEST(FPN, LevelsAndExtraBlocks) {
  ResNetOptions o;
  o.depth = 18;
  testing::narrow(o, 0.25);
  BackboneWithFPN rcnn(o, 32, "", FPNExtra::kMaxPool);
  auto x = torch::randn({2, 3, 128, 96});
  auto p = rcnn->forward(x);
  ASSERT_EQ(p.size(), 5u);  // P2-P6
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(p[i].size(1), 32);
    EXPECT_EQ(p[i].size(2), 128 >> (i + 2));
  }
  auto names = rcnn->named_parameters();
  EXPECT_TRUE(names.contains("fpn.inner_blocks.3.0.weight"));
  EXPECT_TRUE(names.contains("fpn.layer_blocks.0.0.bias"));

  o.returned_layers = {2, 3, 4};
  BackboneWithFPN retina(o, 32, "GN", FPNExtra::kP6P7FromP5);
  auto r = retina->forward(x);
  ASSERT_EQ(r.size(), 5u);  // P3-P7
  for (size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i].size(2), 128 >> (i + 3));
  names = retina->named_parameters();
  EXPECT_TRUE(names.contains("fpn.extra_blocks.p6.weight"));
  EXPECT_TRUE(names.contains("fpn.extra_blocks.p7.bias"));
  EXPECT_TRUE(names.contains("fpn.inner_blocks.0.1.weight"));  // the GN after the lateral conv
  EXPECT_FALSE(names.contains("fpn.inner_blocks.0.0.bias"));   // no conv bias before a norm
}

}  // namespace
}  // namespace largedet::modeling
