#include "largedet/modeling/roi_head_layers.h"

#include "largedet/core/error.h"
#include "largedet/modeling/backbone.h"

namespace largedet::modeling {
namespace {

// torchvision's Conv2dNormActivation (children "0" conv, "1" norm) with its heads' initialisation
// (He, fan_out). A module of its own because a Sequential cannot hold a Sequential.
struct ConvNormReLUImpl : torch::nn::Module {
  ConvNormReLUImpl(int64_t in, int64_t out, const std::string& norm_name) {
    conv = register_module(
        "0",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(norm_name.empty())));
    torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
    if (!norm_name.empty()) {
      norm = make_norm(norm_name, out);
      register_module("1", norm.ptr());
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = conv->forward(x);
    return torch::relu(norm.is_empty() ? y : norm.forward(y));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::AnyModule norm;
};
TORCH_MODULE(ConvNormReLU);

torch::nn::AnyModule conv_norm_relu(int64_t in, int64_t out, const std::string& norm) {
  return torch::nn::AnyModule(ConvNormReLU(in, out, norm));
}

}  // namespace

int64_t box_head_out_channels(const BoxHeadOptions& o) {
  const int64_t channels = o.num_conv() > 0 ? o.conv_dim() : o.in_channels();
  return o.num_fc() > 0 ? o.fc_dim() : channels * o.pool_size() * o.pool_size();
}

torch::nn::Sequential make_box_head(const BoxHeadOptions& o) {
  if (o.num_conv() + o.num_fc() == 0)
    throw Error("the box head needs a conv or an FC layer", "MODEL.ROI_BOX_HEAD.NUM_CONV, NUM_FC",
                "set NUM_FC: 2 (or NUM_CONV: 4, NUM_FC: 1)");
  torch::nn::Sequential head;
  const int64_t flat_in = o.in_channels() * o.pool_size() * o.pool_size();
  if (o.num_conv() == 0 && o.num_fc() == 2 && o.norm().empty()) {
    head->push_back("flatten", torch::nn::Flatten());
    head->push_back("fc6", torch::nn::Linear(flat_in, o.fc_dim()));
    head->push_back("relu6", torch::nn::ReLU());
    head->push_back("fc7", torch::nn::Linear(o.fc_dim(), o.fc_dim()));
    head->push_back("relu7", torch::nn::ReLU());
    return head;
  }
  int64_t channels = o.in_channels();
  for (int64_t i = 0; i < o.num_conv(); ++i) {
    head->push_back(conv_norm_relu(channels, o.conv_dim(), o.norm()));
    channels = o.conv_dim();
  }
  head->push_back(torch::nn::Flatten());
  int64_t features = channels * o.pool_size() * o.pool_size();
  for (int64_t i = 0; i < o.num_fc(); ++i) {
    head->push_back(torch::nn::Linear(features, o.fc_dim()));
    head->push_back(torch::nn::ReLU());
    features = o.fc_dim();
  }
  return head;
}

torch::nn::Sequential make_mask_head(int64_t in_channels, const std::vector<int64_t>& layers,
                                     const std::string& norm) {
  torch::nn::Sequential head;
  for (auto out : layers) {
    head->push_back(conv_norm_relu(in_channels, out, norm));
    in_channels = out;
  }
  return head;
}

}  // namespace largedet::modeling
