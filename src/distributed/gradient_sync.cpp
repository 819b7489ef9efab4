#include "largedet/distributed/gradient_sync.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/distributed/collectives.h"

namespace largedet::distributed {

struct GradientSync::Bucket {
  std::vector<size_t> params;
  std::vector<int64_t> offsets;  // into flat, per member
  at::Tensor flat;
  std::vector<bool> ready;
  size_t pending = 0;
  std::shared_ptr<Work> work;
};

// Runs after AccumulateGrad has written the parameter's .grad: the gradient is final for this
// backward, so it can go to its bucket at once.
struct GradientSync::Hook : torch::autograd::PostAccumulateGradHook {
  Hook(GradientSync* sync, size_t param) : sync(sync), param(param) {}
  void operator()(const torch::autograd::Variable&) override { sync->on_gradient(param); }
  GradientSync* sync;
  size_t param;
};

namespace {
std::string shape_of(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes() << " " << t.scalar_type();
  return out.str();
}

// Applies `op` to one flat buffer per dtype holding all `tensors`, then copies back.
template <typename Op>
void flat_per_dtype(const std::vector<at::Tensor>& tensors, c10::Device device, Op op) {
  std::map<at::ScalarType, std::vector<at::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<at::Tensor> flats;
    for (auto& t : group) flats.push_back(t.detach().reshape(-1).to(device));
    at::Tensor flat = at::cat(flats);
    op(flat);
    int64_t offset = 0;
    for (auto& t : group) {
      torch::NoGradGuard no_grad;
      t.copy_(flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}
}  // namespace

GradientSync::GradientSync(torch::nn::Module& module, std::shared_ptr<ProcessGroup> group,
                           GradientSyncOptions options)
    : group_(group ? std::move(group) : default_group()), options_(options) {
  for (const auto& item : module.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    names_.push_back(item.key());
    params_.push_back(item.value());
  }
  if (world_size() == 1) return;
  if (options_.broadcast_at_start()) broadcast_and_check(module);

  // Buckets in reverse registration order, one dtype each.
  const c10::Device device = group_->device();
  bucket_of_.resize(params_.size());
  int64_t bytes = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    const at::Tensor& p = params_[i];
    int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
    bool fits = !buckets_.empty() &&
                params_[buckets_.back()->params.front()].scalar_type() == p.scalar_type() &&
                bytes + size <= options_.bucket_size_bytes();
    if (!fits) {
      buckets_.push_back(std::make_unique<Bucket>());
      bytes = 0;
    }
    Bucket& b = *buckets_.back();
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
    b.params.push_back(i);
    bucket_of_[i] = buckets_.size() - 1;
    bytes += size;
  }
  for (auto& b : buckets_) {
    const at::Tensor& last = params_[b->params.back()];
    b->flat = at::zeros({b->offsets.back() + last.numel()},
                        at::TensorOptions().dtype(last.scalar_type()).device(device));
    b->ready.assign(b->params.size(), false);
    b->pending = b->params.size();
  }
  for (size_t i = 0; i < params_.size(); ++i)
    torch::autograd::impl::set_post_acc_grad_hooks(params_[i], std::make_unique<Hook>(this, i));
  log::debug() << "GradientSync: " << params_.size() << " parameters in " << buckets_.size()
               << " buckets of up to " << options_.bucket_size_bytes() << " bytes";
}

GradientSync::~GradientSync() {
  for (auto& p : params_)
    if (!buckets_.empty()) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

int GradientSync::world_size() const { return group_ ? group_->size() : 1; }

void GradientSync::broadcast_and_check(torch::nn::Module& module) {
  // Names and shapes first: a mismatch would otherwise corrupt the broadcast or hang.
  std::string signature;
  for (size_t i = 0; i < params_.size(); ++i)
    signature += names_[i] + " " + shape_of(params_[i]) + "\n";
  auto signatures = all_gather_bytes(signature, group_.get());
  for (int r = 0; r < world_size(); ++r) {
    if (signatures[r] == signatures[0]) continue;
    std::istringstream a(signatures[0]), b(signatures[r]);
    std::string line_a, line_b;
    while (std::getline(a, line_a) && std::getline(b, line_b) && line_a == line_b) {
    }
    throw Error("rank " + std::to_string(r) + " holds a different model than rank 0: '" + line_b +
                    "' there vs '" + line_a + "' on rank 0 (or a different count: " +
                    std::to_string(std::count(signatures[r].begin(), signatures[r].end(), '\n')) +
                    " vs " +
                    std::to_string(std::count(signatures[0].begin(), signatures[0].end(), '\n')) +
                    " trainable parameters)",
                "GradientSync", "every rank must build the same model from the same config");
  }
  std::vector<at::Tensor> state;
  for (const auto& p : module.parameters()) state.push_back(p);
  for (const auto& b : module.buffers()) state.push_back(b);
  flat_per_dtype(state, group_->device(), [&](at::Tensor& flat) { group_->broadcast(flat, 0); });
}

void GradientSync::set_sync(bool enabled) { sync_enabled_ = enabled; }

void GradientSync::set_observer(std::function<void(const std::string&)> observer) {
  std::lock_guard<std::mutex> lock(mutex_);
  observer_ = std::move(observer);
}

std::vector<std::vector<std::string>> GradientSync::bucket_parameters() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& b : buckets_) {
    out.emplace_back();
    for (size_t p : b->params) out.back().push_back(names_[p]);
  }
  return out;
}

void GradientSync::on_gradient(size_t param) {
  if (!sync_enabled_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& b = *buckets_[bucket_of_[param]];
  size_t slot = std::find(b.params.begin(), b.params.end(), param) - b.params.begin();
  if (b.work)
    throw Error("the gradient of " + names_[param] + " changed after its bucket was sent",
                "GradientSync",
                "run one backward per synced step; use set_sync(false) for the "
                "micro-steps of gradient accumulation");
  const at::Tensor& grad = params_[param].grad();
  b.flat.narrow(0, b.offsets[slot], grad.numel()).copy_(grad.reshape(-1));
  if (observer_) observer_("grad " + names_[param]);
  if (!b.ready[slot]) {
    b.ready[slot] = true;
    --b.pending;
  }
  if (b.pending == 0) start_ready_buckets();
}

void GradientSync::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_]->pending == 0)
    start(next_to_start_++);
}

void GradientSync::start(size_t index) {
  if (observer_) observer_("start " + std::to_string(index));
  buckets_[index]->work = group_->allreduce_async({buckets_[index]->flat});
}

void GradientSync::finish() {
  if (world_size() == 1) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (observer_) observer_("finish");
  // Buckets backward did not complete (sync off, or parameters without a gradient this step):
  // fill from .grad, zeros where there is none, and start them in order.
  for (auto& b : buckets_) {
    if (b->work) continue;
    for (size_t slot = 0; slot < b->params.size(); ++slot) {
      if (b->ready[slot]) continue;
      const at::Tensor& p = params_[b->params[slot]];
      at::Tensor part = b->flat.narrow(0, b->offsets[slot], p.numel());
      if (p.grad().defined())
        part.copy_(p.grad().reshape(-1));
      else
        part.zero_();
      b->ready[slot] = true;
    }
    b->pending = 0;
  }
  start_ready_buckets();
  const double scale = 1.0 / world_size();
  for (auto& b : buckets_) {
    b->work->wait();
    b->flat.mul_(scale);
    for (size_t slot = 0; slot < b->params.size(); ++slot) {
      at::Tensor& p = params_[b->params[slot]];
      at::Tensor mean = b->flat.narrow(0, b->offsets[slot], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(mean);
      } else {
        p.mutable_grad() = mean.to(p.device()).clone();
      }
    }
    b->work.reset();
    b->ready.assign(b->params.size(), false);
    b->pending = b->params.size();
  }
  next_to_start_ = 0;
}

}  // namespace largedet::distributed
