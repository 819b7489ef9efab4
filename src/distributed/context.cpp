#include "largedet/distributed/context.h"

#include <torch/cuda.h>

#include <cctype>
#include <cstdlib>
#include <sstream>

#include <unistd.h>  // environ (g++ defines _GNU_SOURCE)

#include "largedet/core/error.h"

namespace largedet::distributed {
namespace {

const std::string* find(const Environment& env, const std::string& key) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

int parse_int(const Environment& env, const std::string& key, int fallback) {
  const std::string* text = find(env, key);
  if (!text) return fallback;
  try {
    size_t used = 0;
    int value = std::stoi(*text, &used);
    if (used == text->size()) return value;
  } catch (const std::exception&) {
  }
  throw Error("environment variable " + key + "='" + *text + "' is not an integer", key,
              "fix or unset it");
}

// SLURM_TASKS_PER_NODE looks like "4(x2),3": tasks on the first node come first.
int leading_int(const std::string& text, int fallback) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  return digits == 0 ? fallback : std::stoi(text.substr(0, digits));
}

// NCCL moves CUDA tensors only: auto picks it for a CUDA model, Gloo for a CPU one whatever GPUs
// the machine has (two CPU workers on a one-GPU machine must not become NCCL ranks).
std::string resolve_backend(const std::string& requested, bool cuda_model) {
  if (requested == "auto" || requested.empty()) return cuda_model ? "nccl" : "gloo";
  if (requested == "nccl" && !cuda_model)
    throw Error("DISTRIBUTED.BACKEND is nccl but the model runs on the CPU", "DISTRIBUTED.BACKEND",
                "use auto or gloo with MODEL.DEVICE cpu, or set MODEL.DEVICE cuda");
  if (requested == "gloo" || requested == "nccl") return requested;
  throw Error("unknown distributed backend '" + requested + "'", "DISTRIBUTED.BACKEND",
              "use auto, gloo or nccl");
}

// See Context::cuda_device.
int choose_gpu(const Context& ctx, int visible) {
  if (visible >= ctx.local_world_size) return ctx.local_rank;
  if (visible == 1 && ctx.source == "slurm") return 0;
  throw Error(std::to_string(ctx.local_world_size) + " local ranks share " +
                  std::to_string(visible) + " visible GPU(s) on this node",
              "MODEL.DEVICE cuda",
              visible == 0 ? "set MODEL.DEVICE=cpu, or run where a GPU is visible"
                           : "start at most " + std::to_string(visible) +
                                 " processes per node (--nproc-per-node), or "
                                 "give each task its own GPU");
}

}  // namespace

Environment process_environment() {
  Environment env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string item(*entry);
    auto eq = item.find('=');
    if (eq != std::string::npos) env[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return env;
}

std::string first_slurm_host(const std::string& nodelist) {
  std::string first = nodelist.substr(0, nodelist.find(','));
  auto open = nodelist.find('[');
  if (open == std::string::npos || open > nodelist.find(',')) return first;
  // "gpu[012-015,020]": the prefix, then the first number inside the brackets.
  std::string prefix = nodelist.substr(0, open);
  size_t end = open + 1;
  while (end < nodelist.size() && std::isdigit(static_cast<unsigned char>(nodelist[end]))) ++end;
  return prefix + nodelist.substr(open + 1, end - open - 1);
}

Context Context::from_env(const ContextOptions& options) {
  return from_env(process_environment(), options);
}

Context Context::from_env(const Environment& env, const ContextOptions& options) {
  Context ctx;
  ctx.timeout = options.timeout;
  ctx.backend = resolve_backend(options.backend, options.cuda_model);
  std::string rank_var, size_var;
  if (find(env, "RANK") || find(env, "WORLD_SIZE")) {
    ctx.source = "torchrun";
    rank_var = "RANK";
    size_var = "WORLD_SIZE";
    ctx.rank = parse_int(env, "RANK", 0);
    ctx.world_size = parse_int(env, "WORLD_SIZE", 1);
    ctx.local_rank = parse_int(env, "LOCAL_RANK", ctx.rank);
    ctx.local_world_size = parse_int(env, "LOCAL_WORLD_SIZE", ctx.world_size);
  } else if (find(env, "OMPI_COMM_WORLD_RANK")) {
    ctx.source = "openmpi";
    rank_var = "OMPI_COMM_WORLD_RANK";
    size_var = "OMPI_COMM_WORLD_SIZE";
    ctx.rank = parse_int(env, rank_var, 0);
    ctx.world_size = parse_int(env, size_var, 1);
    ctx.local_rank = parse_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", ctx.rank);
    ctx.local_world_size = parse_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", ctx.world_size);
  } else if (find(env, "SLURM_PROCID")) {
    ctx.source = "slurm";
    rank_var = "SLURM_PROCID";
    size_var = "SLURM_NTASKS";
    ctx.rank = parse_int(env, rank_var, 0);
    ctx.world_size = parse_int(env, size_var, 1);
    ctx.local_rank = parse_int(env, "SLURM_LOCALID", 0);
    const std::string* per_node = find(env, "SLURM_TASKS_PER_NODE");
    ctx.local_world_size = per_node ? leading_int(*per_node, 1) : ctx.world_size;
    const std::string* nodes = find(env, "SLURM_JOB_NODELIST");
    if (!nodes) nodes = find(env, "SLURM_NODELIST");
    if (nodes && !find(env, "MASTER_ADDR")) ctx.master_addr = first_slurm_host(*nodes);
  }
  if (const std::string* addr = find(env, "MASTER_ADDR")) ctx.master_addr = *addr;
  ctx.master_port = parse_int(env, "MASTER_PORT", ctx.master_port);
  const std::string* agent = find(env, "LARGEDET_AGENT_STORE");
  if (!agent) agent = find(env, "TORCHELASTIC_USE_AGENT_STORE");
  ctx.store_hosted_by_launcher = agent && (*agent == "1" || *agent == "True" || *agent == "true");

  if (ctx.world_size < 1)
    throw Error("world size " + std::to_string(ctx.world_size) + " is not positive", size_var);
  if (ctx.rank < 0 || ctx.rank >= ctx.world_size)
    throw Error("rank " + std::to_string(ctx.rank) + " is outside the world of " +
                    std::to_string(ctx.world_size) + " processes",
                rank_var, "check the launcher's process counts");
  if (ctx.local_world_size < 1 || ctx.local_rank < 0 || ctx.local_rank >= ctx.local_world_size)
    throw Error("local rank " + std::to_string(ctx.local_rank) + " is outside the " +
                    std::to_string(ctx.local_world_size) + " processes of this node",
                ctx.source + " variables");
  if (ctx.master_port < 0 || ctx.master_port > 65535)
    throw Error("MASTER_PORT=" + std::to_string(ctx.master_port) + " is not a TCP port",
                "MASTER_PORT");
  if (options.cuda_model) {
    const int visible = options.visible_gpus >= 0 ? options.visible_gpus
                                                  : static_cast<int>(torch::cuda::device_count());
    ctx.gpu = choose_gpu(ctx, visible);
  }
  return ctx;
}

int Context::cuda_device() const {
  LARGEDET_CHECK(gpu >= 0, "Context::cuda_device: this rank's model is not on CUDA (rank ", rank,
                 ", ", backend, ")");
  return gpu;
}

std::string Context::describe() const {
  std::ostringstream out;
  out << "rank " << rank << "/" << world_size << " (local " << local_rank << "/" << local_world_size
      << "), " << backend;
  if (gpu >= 0) out << " on cuda:" << gpu;
  if (world_size > 1) out << " via " << master_addr << ":" << master_port;
  out << ", from " << (source == "none" ? "no launcher variables" : source + " variables");
  return out.str();
}

}  // namespace largedet::distributed
