// The box heads and their registry (see roi_heads/box_head.h).
#include "largedet/modeling/roi_heads/box_head.h"

#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/modeling/backbone/norm.h"
#include "largedet/modeling/registry.h"

namespace largedet::modeling {

namespace {

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
    head->push_back(ConvNormReLU(channels, o.conv_dim(), o.norm()));
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

Registry<BoxHeadFactory>& box_heads() {
  static auto* registry = new Registry<BoxHeadFactory>(
      "box head", "MODEL.ROI_BOX_HEAD.NAME", "register one with modeling::register_box_head",
      {{"FastRCNNConvFCHead", [](const BoxHeadOptions& o) -> std::shared_ptr<BoxHeadImpl> {
          return FastRCNNConvFCHead(o).ptr();
        }}});
  return *registry;
}

}  // namespace

FastRCNNConvFCHeadImpl::FastRCNNConvFCHeadImpl(BoxHeadOptions o)
    : options(std::move(o)), layers(make_box_head(options)) {
  // torchvision's heads are Sequentials: their layers' names are the head's children's.
  for (const auto& layer : layers->named_children()) register_module(layer.key(), layer.value());
}

torch::Tensor FastRCNNConvFCHeadImpl::forward(const torch::Tensor& x) { return layers->forward(x); }

int64_t FastRCNNConvFCHeadImpl::output_size() const {
  const auto& o = options;
  const int64_t channels = o.num_conv() > 0 ? o.conv_dim() : o.in_channels();
  return o.num_fc() > 0 ? o.fc_dim() : channels * o.pool_size() * o.pool_size();
}

void register_box_head(const std::string& name, BoxHeadFactory factory) {
  box_heads().add(name, std::move(factory));
}

std::shared_ptr<BoxHeadImpl> build_box_head(const std::string& name,
                                            const BoxHeadOptions& options) {
  auto head = box_heads().get(name)(options);
  LARGEDET_CHECK(head != nullptr, "box head '", name, "': its factory returned no module");
  return head;
}

std::vector<std::string> registered_box_heads() { return box_heads().names(); }

}  // namespace largedet::modeling
