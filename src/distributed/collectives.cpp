#include "largedet/distributed/collectives.h"

#include <ATen/ATen.h>

#include <cstring>

#include "largedet/core/error.h"

namespace largedet::distributed {
namespace {

// The group to use: the given one, else the default; null means a world of one.
std::shared_ptr<ProcessGroup> resolve(ProcessGroup* group) {
  if (group) return std::shared_ptr<ProcessGroup>(std::shared_ptr<ProcessGroup>{}, group);
  return default_group();
}

// Runs `op` on a contiguous copy on the group's device when `tensor` is not already usable,
// then copies the result back.
template <typename Op>
void in_place(const at::Tensor& tensor, ProcessGroup& group, Op op) {
  if (tensor.is_contiguous() && tensor.device() == group.device()) {
    op(tensor);
    return;
  }
  at::Tensor staged = tensor.to(group.device()).contiguous();
  op(staged);
  tensor.copy_(staged);
}

}  // namespace

void all_reduce_sum(const at::Tensor& tensor, ProcessGroup* group) {
  auto g = resolve(group);
  if (!g || g->size() == 1) return;
  in_place(tensor, *g, [&](const at::Tensor& t) { g->allreduce(t); });
}

void all_reduce_mean(const at::Tensor& tensor, ProcessGroup* group) {
  LARGEDET_CHECK(tensor.is_floating_point(), "all_reduce_mean needs a floating tensor, got ",
                 tensor.scalar_type());
  auto g = resolve(group);
  if (!g || g->size() == 1) return;
  in_place(tensor, *g, [&](const at::Tensor& t) {
    g->allreduce(t);
    t.div_(g->size());
  });
}

void broadcast(const at::Tensor& tensor, int root, ProcessGroup* group) {
  auto g = resolve(group);
  if (!g || g->size() == 1) return;
  LARGEDET_CHECK(root >= 0 && root < g->size(), "broadcast root ", root,
                 " is outside the world of ", g->size());
  in_place(tensor, *g, [&](const at::Tensor& t) { g->broadcast(t, root); });
}

std::vector<std::string> all_gather_bytes(const std::string& blob, ProcessGroup* group) {
  auto g = resolve(group);
  if (!g || g->size() == 1) return {blob};
  auto device = g->device();
  // Sizes first, then every blob padded to the largest (all-gather needs equal shapes).
  at::Tensor size = at::full({1}, static_cast<int64_t>(blob.size()), at::kLong).to(device);
  std::vector<at::Tensor> sizes;
  for (int r = 0; r < g->size(); ++r) sizes.push_back(at::empty({1}, size.options()));
  g->allgather_async(sizes, size)->wait();
  std::vector<int64_t> lengths;
  int64_t longest = 0;
  for (auto& s : sizes) {
    lengths.push_back(s.cpu().item<int64_t>());
    longest = std::max(longest, lengths.back());
  }
  if (longest == 0) return std::vector<std::string>(g->size());
  at::Tensor mine = at::zeros({longest}, at::kByte);
  if (!blob.empty()) std::memcpy(mine.data_ptr(), blob.data(), blob.size());
  mine = mine.to(device);
  std::vector<at::Tensor> all;
  for (int r = 0; r < g->size(); ++r) all.push_back(at::empty({longest}, mine.options()));
  g->allgather_async(all, mine)->wait();
  std::vector<std::string> blobs;
  for (int r = 0; r < g->size(); ++r) {
    at::Tensor host = all[r].cpu();
    blobs.emplace_back(static_cast<const char*>(host.data_ptr()), lengths[r]);
  }
  return blobs;
}

std::vector<std::string> gather_bytes(const std::string& blob, int root, ProcessGroup* group) {
  // An all-gather costs (n-1)x the receive of a gather, but detections are small next to images
  // and this keeps one code path that every backend supports.
  auto blobs = all_gather_bytes(blob, group);
  auto g = resolve(group);
  int rank = g ? g->rank() : 0;
  return rank == root ? blobs : std::vector<std::string>{};
}

void barrier(ProcessGroup* group) {
  auto g = resolve(group);
  if (g && g->size() > 1) g->barrier();
}

}  // namespace largedet::distributed
