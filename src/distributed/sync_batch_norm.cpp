#include "largedet/distributed/sync_batch_norm.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/custom_class.h>
#include <torch/nn/init.h>

#include <cmath>

#include "largedet/core/error.h"

namespace largedet::distributed {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

const std::vector<int64_t> kReduceDims = {0, 2, 3};

// Carries the group into backward through the autograd context's saved data.
struct GroupHolder : torch::CustomClassHolder {
  explicit GroupHolder(std::shared_ptr<ProcessGroup> g) : group(std::move(g)) {}
  std::shared_ptr<ProcessGroup> group;
};

void sum_over_ranks(at::Tensor& packed, const std::shared_ptr<ProcessGroup>& group) {
  if (!group || group->size() == 1) return;
  if (packed.device() == group->device()) {
    group->allreduce(packed);
  } else {
    at::Tensor staged = packed.to(group->device());
    group->allreduce(staged);
    packed = staged.to(packed.device());
  }
}

at::Tensor per_channel(const at::Tensor& t) { return t.reshape({1, -1, 1, 1}); }

// Every rank's `packed` as the rows of a [world, n] tensor on packed's device.
at::Tensor gather_over_ranks(const at::Tensor& packed, const std::shared_ptr<ProcessGroup>& group) {
  if (!group || group->size() == 1) return packed.unsqueeze(0);
  at::Tensor staged = packed.to(group->device());
  std::vector<at::Tensor> rows;
  for (int r = 0; r < group->size(); ++r) rows.push_back(at::empty_like(staged));
  group->allgather_async(rows, staged)->wait();
  return at::stack(rows).to(packed.device());
}

// CUDA: ATen's native SyncBN kernels, the ones torch.nn.SyncBatchNorm runs: per-rank Welford
// statistics in float whatever the input dtype, merged over ranks by count (one allgather of
// [mean, invstd, count]), fused elementwise passes, and in backward one allreduce of
// [sum(dy), sum(dy * (x - mean))]. An empty local batch takes part with a count of 0.
struct NativeSyncBatchNormFunction : torch::autograd::Function<NativeSyncBatchNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& running_mean,
                            const at::Tensor& running_var, double momentum, double eps,
                            const std::shared_ptr<ProcessGroup>& group) {
    // Channels-last stays so: the native kernels take either layout (as torch.nn.SyncBatchNorm).
    const at::Tensor x = input.contiguous(input.suggest_memory_format());
    const int64_t c = x.size(1);
    // Empty tensors stand for "none" (autograd wants defined inputs).
    auto given = [](const at::Tensor& t) { return t.numel() > 0 ? t : at::Tensor(); };
    at::Tensor mean_local, invstd_local;
    if (x.numel() > 0) {
      std::tie(mean_local, invstd_local) = at::batch_norm_stats(x, eps);
    } else {
      // Variance 0 (invstd 1 / sqrt(eps)) at a count of 0: the merge weighs it by nothing.
      mean_local = at::zeros({c}, x.options().dtype(at::kFloat));
      invstd_local = at::full({c}, 1.0 / std::sqrt(eps), x.options().dtype(at::kFloat));
    }
    at::Tensor count_local =
        at::full({1}, static_cast<double>(x.numel() / c), mean_local.options());
    const at::Tensor all =
        gather_over_ranks(at::cat({mean_local, invstd_local, count_local}), group);
    const at::Tensor counts = all.select(1, 2 * c).contiguous();
    auto [mean, invstd] = at::batch_norm_gather_stats_with_counts(
        x, all.slice(1, 0, c).contiguous(), all.slice(1, c, 2 * c).contiguous(),
        given(running_mean), given(running_var), momentum, eps, counts);
    at::Tensor output = at::batch_norm_elemt(x, given(weight), given(bias), mean, invstd, eps);
    ctx->save_for_backward({x, weight, mean, invstd, counts.to(at::kInt)});
    ctx->saved_data["group"] = c10::IValue::make_capsule(c10::make_intrusive<GroupHolder>(group));
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &mean = saved[2], &invstd = saved[3];
    const at::Tensor weight = saved[1].numel() > 0 ? saved[1] : at::Tensor();
    const at::Tensor& counts = saved[4];
    auto group =
        c10::static_intrusive_pointer_cast<GroupHolder>(ctx->saved_data["group"].toCapsule())
            ->group;
    const at::Tensor dy = grad_outputs[0].contiguous(x.suggest_memory_format());
    const bool affine = weight.defined();
    auto [sum_dy, sum_dy_xmu, grad_weight, grad_bias] =
        at::batch_norm_backward_reduce(dy, x, mean, invstd, weight, true, affine, affine);
    const int64_t c = sum_dy.numel();
    at::Tensor packed = at::cat({sum_dy, sum_dy_xmu});
    sum_over_ranks(packed, group);
    at::Tensor grad_input = at::batch_norm_backward_elemt(
        dy, x, mean, invstd, weight, packed.slice(0, 0, c), packed.slice(0, c), counts);
    return {grad_input,   grad_weight,  grad_bias,    at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// y = (x - mean) * invstd * weight + bias (weight and bias empty: none), with mean and invstd from
// the global batch (computed outside, without gradient) and a backward that accounts for their
// dependence on x on every rank.
struct SyncBatchNormFunction : torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& mean,
                            const at::Tensor& invstd, const at::Tensor& count,
                            const std::shared_ptr<ProcessGroup>& group) {
    at::Tensor output = (input - per_channel(mean)) * per_channel(invstd);
    if (weight.numel() > 0) output = output * per_channel(weight) + per_channel(bias);
    output = output.to(input.scalar_type());
    ctx->save_for_backward({input, weight, mean, invstd, count});
    ctx->saved_data["group"] = c10::IValue::make_capsule(c10::make_intrusive<GroupHolder>(group));
    return output;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const at::Tensor& count = saved[4];  // [1], float64, on the statistics' device
    auto group =
        c10::static_intrusive_pointer_cast<GroupHolder>(ctx->saved_data["group"].toCapsule())
            ->group;
    at::Tensor dy = grad_outputs[0];
    at::Tensor xhat = (input - per_channel(mean)) * per_channel(invstd);
    at::Tensor sum_dy = dy.sum(kReduceDims, false, at::kDouble);
    at::Tensor sum_dy_xhat = (dy * xhat).sum(kReduceDims, false, at::kDouble);
    at::Tensor grad_weight, grad_bias;
    if (weight.numel() > 0) {
      grad_weight = sum_dy_xhat.to(weight.scalar_type());
      grad_bias = sum_dy.to(weight.scalar_type());
    }
    // The one backward allreduce; every rank takes part, whatever it needs.
    at::Tensor packed = at::cat({sum_dy, sum_dy_xhat});
    sum_over_ranks(packed, group);
    const int64_t channels = sum_dy.numel();
    at::Tensor mean_dy = (packed.slice(0, 0, channels) / count).to(mean.scalar_type());
    at::Tensor mean_dy_xhat = (packed.slice(0, channels) / count).to(mean.scalar_type());
    at::Tensor scale = weight.numel() > 0 ? invstd * weight : invstd;
    at::Tensor grad_input =
        ((dy - per_channel(mean_dy) - xhat * per_channel(mean_dy_xhat)) * per_channel(scale))
            .to(input.scalar_type());
    return {grad_input,   grad_weight,  grad_bias,   at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

SyncBatchNorm2dImpl::SyncBatchNorm2dImpl(SyncBatchNorm2dOptions options_)
    : options(std::move(options_)) {
  reset();
}

void SyncBatchNorm2dImpl::reset() {
  const int64_t c = options.num_features();
  LARGEDET_CHECK(c > 0, "SyncBatchNorm2d needs a positive number of features, got ", c);
  if (options.affine()) {
    weight = register_parameter("weight", at::empty({c}));
    bias = register_parameter("bias", at::empty({c}));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", at::zeros({c}));
    running_var = register_buffer("running_var", at::ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
  }
  reset_parameters();
}

void SyncBatchNorm2dImpl::reset_running_stats() {
  if (!options.track_running_stats()) return;
  torch::NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void SyncBatchNorm2dImpl::reset_parameters() {
  reset_running_stats();
  if (!options.affine()) return;
  torch::NoGradGuard no_grad;
  weight.fill_(1);
  bias.zero_();
}

at::Tensor SyncBatchNorm2dImpl::forward(const at::Tensor& input) {
  LARGEDET_CHECK(input.dim() == 4, "SyncBatchNorm2d expects [N, C, H, W] input, got ", input.dim(),
                 " dimensions");
  LARGEDET_CHECK(input.size(1) == options.num_features(), "SyncBatchNorm2d over ",
                 options.num_features(), " channels got input with ", input.size(1));
  const bool use_batch_stats = is_training() || !options.track_running_stats();
  if (!use_batch_stats) {
    return at::batch_norm(input, weight, bias, running_mean, running_var, false, 0.0, options.eps(),
                          at::globalContext().userEnabledCuDNN());
  }
  auto group = options.process_group() ? options.process_group() : sync_batch_norm_group();
  if (input.is_cuda()) {
    double factor = 0;  // no running statistics: unused
    if (options.track_running_stats()) {
      torch::NoGradGuard no_grad;
      num_batches_tracked.add_(1);
      factor = options.momentum() ? *options.momentum() : 1.0 / num_batches_tracked.item<double>();
    }
    at::Tensor none = at::empty({0}, input.options());
    return NativeSyncBatchNormFunction::apply(
        input, options.affine() ? weight : none, options.affine() ? bias : none,
        options.track_running_stats() ? running_mean : none,
        options.track_running_stats() ? running_var : none, factor, options.eps(), group);
  }
  at::Tensor mean, invstd;
  at::Tensor count;
  {
    torch::NoGradGuard no_grad;
    // Statistics in double: sums over a 1K-image batch, and var = E[x^2] - mean^2 cancels.
    // Half and bf16 inputs are squared in float (|x| > 256 squares to inf in half), and their
    // mean and invstd stay float, as ATen's batch-norm kernels keep them.
    at::Tensor x = input.detach();
    const bool reduced = x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16;
    const at::ScalarType stat_dtype = reduced ? at::kFloat : x.scalar_type();
    if (reduced) x = x.to(at::kFloat);
    at::Tensor n =
        at::full({1}, static_cast<double>(x.numel() / x.size(1)), x.options().dtype(at::kDouble));
    at::Tensor packed = at::cat({x.sum(kReduceDims, false, at::kDouble),
                                 x.square().sum(kReduceDims, false, at::kDouble), n});
    sum_over_ranks(packed, group);  // the one forward allreduce
    const int64_t c = x.size(1);
    count = packed.slice(0, 2 * c);
    // Checked where it is free: on a GPU the check would cost a host sync per layer, and a global
    // batch of one value gives NaN/inf statistics instead of this error. Read through the pointer:
    // no device waits for a CPU tensor, so a HostSyncProfiler (which counts what a GPU step would
    // wait for, and sees item()) must not count it.
    const double values = count.is_cpu() ? *count.data_ptr<double>() : 2;
    if (values < 2)
      throw Error(
          "SyncBatchNorm2d in training needs more than one value per channel over all "
          "ranks, got " +
              std::to_string(static_cast<int64_t>(values)),
          "input of shape " + std::to_string(x.size(0)) + "x" + std::to_string(c) + "x" +
              std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)),
          "use a larger batch or GroupNorm");
    at::Tensor mean64 = packed.slice(0, 0, c) / count;
    at::Tensor var64 = (packed.slice(0, c, 2 * c) / count - mean64.square()).clamp_min(0);
    mean = mean64.to(stat_dtype);
    invstd = (var64 + options.eps()).rsqrt().to(stat_dtype);
    if (is_training() && options.track_running_stats()) {
      num_batches_tracked.add_(1);
      double factor =
          options.momentum() ? *options.momentum() : 1.0 / num_batches_tracked.item<double>();
      running_mean.mul_(1 - factor).add_(mean64.to(running_mean.scalar_type()), factor);
      running_var.mul_(1 - factor)
          .add_((var64 * (count / (count - 1))).to(running_var.scalar_type()), factor);
    }
  }
  // Autograd wants defined tensors as inputs: without affine, empty ones stand for "none".
  at::Tensor none = at::empty({0}, input.options());
  return SyncBatchNormFunction::apply(input, options.affine() ? weight : none,
                                      options.affine() ? bias : none, mean, invstd, count, group);
}

void SyncBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "largedet::distributed::SyncBatchNorm2d(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=";
  if (options.momentum())
    stream << *options.momentum();
  else
    stream << "None";
  stream << ", affine=" << std::boolalpha << options.affine()
         << ", track_running_stats=" << options.track_running_stats() << ")";
}

torch::nn::AnyModule make_sync_batch_norm(int64_t channels, double eps, double momentum) {
  return torch::nn::AnyModule(
      SyncBatchNorm2d(SyncBatchNorm2dOptions(channels).eps(eps).momentum(momentum)));
}

}  // namespace largedet::distributed
