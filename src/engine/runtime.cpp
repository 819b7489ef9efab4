#include "largedet/engine/runtime.h"

#include <ATen/Context.h>
#include <torch/cuda.h>

#ifdef LARGEDET_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/data/build.h"
#include "largedet/engine/checkpointer.h"
#include "largedet/solver/batch_scaling.h"
#include "largedet/tensor/threads.h"

namespace largedet::engine {

namespace {

// Bound as soon as it is known, whatever the backend: otherwise every rank's first CUDA call
// (a pinned buffer, the model's copy) opens a context on GPU 0.
c10::Device configured_device(const Config& config, const distributed::Context& context) {
  const auto name = config.get<std::string>("MODEL.DEVICE");
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda") {
    const auto index = static_cast<c10::DeviceIndex>(context.cuda_device());
#ifdef LARGEDET_WITH_CUDA
    c10::cuda::set_device(index);
#endif
    return c10::Device(c10::kCUDA, index);
  }
  throw Error("unknown MODEL.DEVICE \"" + name + "\"", config.source("MODEL.DEVICE"),
              "use cpu or cuda");
}

}  // namespace

Runtime setup_runtime(const Config& config) {
  // A recipe's LOG_LEVEL wins over the built-in default, not over `largedet --log-level`.
  if (config.source("LOG_LEVEL") != "default")
    log::set_level(log::parse_level(config.get<std::string>("LOG_LEVEL")));
  distributed::ContextOptions context;
  context.backend = config.get<std::string>("DISTRIBUTED.BACKEND");
  context.cuda_model = config.get<std::string>("MODEL.DEVICE") == "cuda";
  if (context.cuda_model && !torch::cuda::is_available()) {
    throw Error("MODEL.DEVICE is cuda but no CUDA device is available",
                config.source("MODEL.DEVICE"), "set MODEL.DEVICE=cpu");
  }
  context.timeout = std::chrono::seconds(config.get<int64_t>("DISTRIBUTED.TIMEOUT_SECONDS"));
  Runtime runtime;
  runtime.group = distributed::init(context);
  configure_threads(config.get<int>("NUM_THREADS"), runtime.group->context().local_world_size);
  runtime.device = configured_device(config, runtime.group->context());
  at::globalContext().setBenchmarkCuDNN(config.get<bool>("CUDNN_BENCHMARK"));
  return runtime;
}

std::vector<std::string> resolve_recipe(Config& config, int world_size) {
  data::resolve_dataset_names(config);
  modeling::resolve_architecture(config);
  return solver::apply_batch_scaling(config, world_size);
}

std::shared_ptr<modeling::DetectorImpl> load_detector(const Config& config,
                                                      const std::string& weights,
                                                      const c10::Device& device) {
  auto model = modeling::build_detector(config);
  modeling::load_state_dict(*model, load_model_tensors(weights), /*strict=*/true, weights);
  model->to(device);
  model->eval();
  return model;
}

}  // namespace largedet::engine
