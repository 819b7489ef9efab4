// c10d process groups (Gloo on CPU, NCCL on CUDA) over a TCPStore rendezvous, with the checks that
// turn misconfiguration and lost peers into clear errors instead of hangs.
//
// The only translation unit that sees c10d's headers. Gloo's own headers are not in the PyTorch
// wheel: gloo_shim/ declares what ProcessGroupGloo.hpp needs (see gloo_shim/README.md). c10d is
// compiled with USE_C10D_GLOO (and USE_C10D_NCCL in CUDA builds), so we must see the same headers.
#if __has_include(<gloo/algorithm.h>)
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#define LARGEDET_HAVE_GLOO 1
#endif
#if defined(LARGEDET_WITH_CUDA) && __has_include(<nccl.h>)
#define USE_C10D_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define LARGEDET_HAVE_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/distributed/collective_watchdog.h"
#include "largedet/distributed/host_waits.h"
#include "largedet/distributed/process_group.h"

namespace largedet::distributed {
namespace {

using Clock = std::chrono::steady_clock;

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

std::string seconds(std::chrono::milliseconds timeout) {
  std::ostringstream out;
  out << timeout.count() / 1000.0 << " s";
  return out.str();
}

std::vector<uint8_t> bytes(const std::string& text) { return {text.begin(), text.end()}; }
std::string text(const std::vector<uint8_t>& data) { return {data.begin(), data.end()}; }

bool port_in_use(const std::string& message) {
  return message.find("already in use") != std::string::npos ||
         message.find("EADDRINUSE") != std::string::npos ||
         message.find("errno: 98") != std::string::npos;
}

c10::intrusive_ptr<c10d::Store> open_store(const Context& ctx) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(ctx.master_port);
  options.isServer = !ctx.store_hosted_by_launcher && ctx.rank == 0;
  options.waitWorkers = false;
  options.timeout = ctx.timeout;
  std::string where =
      "MASTER_ADDR=" + ctx.master_addr + " MASTER_PORT=" + std::to_string(ctx.master_port);
  try {
    return c10::make_intrusive<c10d::TCPStore>(ctx.master_addr, options);
  } catch (const std::exception& e) {
    if (options.isServer && port_in_use(e.what()))
      throw Error("rank 0 cannot serve the rendezvous store: port " +
                      std::to_string(ctx.master_port) + " is already in use",
                  where,
                  "another job or a leftover process holds it; pick a free port "
                  "(largedet launch --master-port 0 picks one)");
    if (options.isServer)
      throw Error("rank 0 cannot serve the rendezvous store: " + first_line(e.what()), where);
    throw Error("rank " + std::to_string(ctx.rank) + " cannot reach the rendezvous store within " +
                    seconds(ctx.timeout) + ": " + first_line(e.what()),
                where, "is rank 0 (or the launcher) running, and is the address reachable?");
  }
}

// Every rank checks in under its rank number with its world size, and everyone compares. Catches
// mismatched WORLD_SIZE, a rank started twice, and ranks that never start, each by name.
void check_membership(c10d::Store& store, const Context& ctx, const std::string& group) {
  const std::string base = "largedet/" + group + "/world/";
  auto size_key = [&](int r) { return base + "size/" + std::to_string(r); };
  const std::string me = "rank " + std::to_string(ctx.rank);
  if (store.add(base + "starts/" + std::to_string(ctx.rank), 1) > 1)
    throw Error(me + " was started twice in the same job", ctx.source + " variables",
                "check --node-rank / the ranks your launcher assigns");
  store.set(size_key(ctx.rank), bytes(std::to_string(ctx.world_size)));

  auto compare = [&](int r) {
    int theirs = std::stoi(text(store.get(size_key(r))));
    if (theirs != ctx.world_size)
      throw Error(me + " has world size " + std::to_string(ctx.world_size) + " but rank " +
                      std::to_string(r) + " has world size " + std::to_string(theirs),
                  "WORLD_SIZE", "every process of a job must be started with the same world size");
  };
  auto wait_for = [&](const std::vector<std::string>& keys) {
    try {
      store.wait(keys, ctx.timeout);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  // Rank 0 first: a rank with the wrong world size fails at once, not after the timeout.
  if (ctx.rank != 0) {
    if (!wait_for({size_key(0)}))
      throw Error(me + ": rank 0 did not join within " + seconds(ctx.timeout), "rendezvous");
    compare(0);
  }
  std::vector<std::string> keys;
  for (int r = 0; r < ctx.world_size; ++r) keys.push_back(size_key(r));
  if (!wait_for(keys)) {
    std::string missing;
    for (int r = 0; r < ctx.world_size; ++r)
      if (!store.check({size_key(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    throw Error(me + ": rank(s) " + missing + " of " + std::to_string(ctx.world_size) +
                    " did not join within " + seconds(ctx.timeout),
                "rendezvous", "were all processes started, with the same world size?");
  }
  for (int r = 0; r < ctx.world_size; ++r) compare(r);
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax:
      return c10d::ReduceOp(c10d::ReduceOp::MAX);
    case ReduceOp::kMin:
      return c10d::ReduceOp(c10d::ReduceOp::MIN);
    default:
      return c10d::ReduceOp(c10d::ReduceOp::SUM);
  }
}

#ifdef LARGEDET_HAVE_GLOO
std::shared_ptr<::gloo::transport::Device> gloo_device(const Context& ctx) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    std::string first(ifname);
    return c10d::ProcessGroupGloo::createDeviceForInterface(first.substr(0, first.find(',')));
  }
  // A one-machine job talks over loopback, whatever the hostname resolves to.
  const std::string& addr = ctx.master_addr;
  if (addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

class C10dProcessGroup : public ProcessGroup,
                         public std::enable_shared_from_this<C10dProcessGroup> {
 public:
  C10dProcessGroup(const Context& ctx, c10::intrusive_ptr<c10d::Store> store,
                   c10::intrusive_ptr<c10d::Backend> backend, c10::Device device)
      : ProcessGroup(ctx),
        store_(std::move(store)),
        backend_(std::move(backend)),
        device_(device),
        waits_block_host_(waits_block_host(ctx.backend, ctx.backend == "nccl"
                                                            ? nccl_fault_env(process_environment())
                                                            : std::vector<NcclEnvSetting>{})) {
    // Under NCCL wait() only orders the streams (nccl_fault_env): a failed or hung collective is
    // found by polling, and ends the process with the error fail() would have thrown.
    if (ctx.backend == "nccl") {
      watchdog_ = std::make_unique<CollectiveWatchdog>(ctx.timeout);
      watchdog_->start(std::chrono::milliseconds(500), [this](const WatchdogVerdict& v) {
        broken_ = true;
        const std::string lost = lost_ranks();
        log::error() << v.op << " failed on rank " << rank() << ": "
                     << (lost.empty() ? (v.timed_out ? "a peer failed, hung or became unreachable"
                                                     : "the collective failed")
                                      : lost)
                     << " [" << first_line(v.reason) << "]: the job cannot continue";
        std::fflush(nullptr);
        std::_Exit(1);
      });
    }
  }

  ~C10dProcessGroup() override {
    if (watchdog_) watchdog_->stop();
    // After a failure the backend's threads may be stuck on a dead peer until the timeout; its
    // destructor would join them. The process is about to report the error and exit: leak it.
    if (broken_) (void)backend_.release();
  }

  c10::Device device() const override { return device_; }
  std::shared_ptr<ProcessGroup> new_group(const std::string& name) override;

  std::shared_ptr<Work> allreduce_async(std::vector<at::Tensor> tensors, ReduceOp op) override {
    c10d::AllreduceOptions options;
    options.reduceOp = to_c10d(op);
    return issue("allreduce", tensors.size(), [&](size_t i) {
      std::vector<at::Tensor> one{tensors[i]};
      return backend_->allreduce(one, options);
    });
  }

  std::shared_ptr<Work> broadcast_async(std::vector<at::Tensor> tensors, int root) override {
    c10d::BroadcastOptions options;
    options.rootRank = root;
    return issue("broadcast", tensors.size(), [&](size_t i) {
      std::vector<at::Tensor> one{tensors[i]};
      return backend_->broadcast(one, options);
    });
  }

  std::shared_ptr<Work> allgather_async(std::vector<at::Tensor> outputs,
                                        at::Tensor input) override {
    return issue("allgather", 1, [&](size_t) {
      std::vector<std::vector<at::Tensor>> out{outputs};
      std::vector<at::Tensor> in{input};
      return backend_->allgather(out, in);
    });
  }

  void barrier() override {
    issue("barrier", 1, [&](size_t) { return backend_->barrier(); })->wait();
  }

  // Turns a c10d failure into a largedet::Error that names the lost rank when the launcher has
  // recorded one, and marks the group broken. One rule for both backends: what the failure was
  // comes from the store, not from c10d's message (Gloo's socket error, NCCL's DistBackendError
  // thrown by blocking wait: nccl_fault_env), which only follows in brackets.
  [[noreturn]] void fail(const std::string& op, const std::string& cause) {
    broken_ = true;
    std::string lost = lost_ranks();
    throw Error(op + " failed on rank " + std::to_string(rank()) + ": " +
                    (lost.empty() ? "a peer failed, hung or became unreachable (timeout " +
                                        seconds(context_.timeout) + ")"
                                  : lost) +
                    " [" + first_line(cause) + "]",
                "distributed " + context_.backend, "the job cannot continue");
  }

 private:
  class C10dWork : public Work {
   public:
    C10dWork(std::shared_ptr<C10dProcessGroup> group, std::string op,
             std::vector<c10::intrusive_ptr<c10d::Work>> works, bool blocks_host)
        : group_(std::move(group)),
          op_(std::move(op)),
          works_(std::move(works)),
          blocks_host_(blocks_host) {}
    void wait() override {
      if (blocks_host_) note_host_wait(op_);
      for (auto& work : works_) {
        try {
          work->wait();
        } catch (const std::exception& e) {
          group_->fail(op_, e.what());
        }
      }
    }
    bool is_completed() override {
      return std::all_of(works_.begin(), works_.end(), [](auto& w) { return w->isCompleted(); });
    }

   private:
    std::shared_ptr<C10dProcessGroup> group_;
    std::string op_;
    std::vector<c10::intrusive_ptr<c10d::Work>> works_;
    bool blocks_host_;
  };

  template <typename Start>
  std::shared_ptr<Work> issue(const std::string& op, size_t count, Start start) {
    // c10d matches collectives across ranks by issue order: one issuer at a time.
    std::lock_guard<std::mutex> lock(issue_mutex_);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    try {
      for (size_t i = 0; i < count; ++i) works.push_back(start(i));
    } catch (const std::exception& e) {
      fail(op, e.what());
    }
    if (watchdog_) {
      const auto now = Clock::now();
      for (const auto& work : works) watchdog_->watch(op, std::make_shared<Watched>(work), now);
    }
    // A barrier waits on the host under NCCL too (c10d synchronises its stream).
    return std::make_shared<C10dWork>(shared_from_this(), op, std::move(works),
                                      waits_block_host_ || op == "barrier");
  }

  class Watched : public WatchedWork {
   public:
    explicit Watched(c10::intrusive_ptr<c10d::Work> work) : work_(std::move(work)) {}
    bool completed() override { return work_->isCompleted(); }
    std::optional<std::string> failure() override {
      auto error = work_->exception();
      if (!error) return std::nullopt;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        return std::string(e.what());
      } catch (...) {
        return std::string("an unknown error");
      }
    }

   private:
    c10::intrusive_ptr<c10d::Work> work_;
  };

  // "lost rank 1 (exited with code 3)", from the keys the launcher writes, the first to die first
  // (the others most likely followed it); polled briefly because our connection to the dead peer
  // usually breaks a moment before the launcher reaps it.
  std::string lost_ranks() {
    auto deadline = Clock::now() +
                    std::min<std::chrono::milliseconds>(context_.timeout, std::chrono::seconds(5));
    try {
      do {
        std::vector<std::pair<DeadRecord, int>> dead;
        for (int r = 0; r < size(); ++r) {
          if (r == rank() || !store_->check({store_keys::dead_rank(r)})) continue;
          dead.emplace_back(parse_dead_record(text(store_->get(store_keys::dead_rank(r)))), r);
        }
        std::stable_sort(dead.begin(), dead.end(), [](const auto& a, const auto& b) {
          return a.first.order < b.first.order;
        });
        std::string found;
        for (const auto& [record, r] : dead)
          found += (found.empty() ? "" : ", ") + std::to_string(r) + " (" + record.how + ")";
        if (!found.empty()) return "lost rank " + found;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      } while (Clock::now() < deadline);
    } catch (const std::exception&) {
      if (!context_.store_hosted_by_launcher)
        return "lost rank 0 (it serves the rendezvous store, which is unreachable)";
      return "the launcher's rendezvous store is unreachable (its node is down?)";
    }
    return "";
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  c10::Device device_;
  std::mutex issue_mutex_;
  std::atomic<bool> broken_{false};
  std::unique_ptr<CollectiveWatchdog> watchdog_;  // NCCL only
  const bool waits_block_host_;                   // set after the NCCL variables (connect)
};

// A group named `name` over `store` (groups of one job share the store, and its server).
std::shared_ptr<C10dProcessGroup> connect(const Context& ctx, c10::intrusive_ptr<c10d::Store> store,
                                          const std::string& name) {
  check_membership(*store, ctx, name);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("largedet/" + name + "/pg", store);
  c10::intrusive_ptr<c10d::Backend> backend;
  c10::Device device(c10::kCPU);
  if (ctx.backend == "gloo") {
#ifdef LARGEDET_HAVE_GLOO
    auto options = c10d::ProcessGroupGloo::Options::create(ctx.timeout);
    options->devices.push_back(gloo_device(ctx));
    try {
      backend =
          c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, ctx.rank, ctx.world_size, options);
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(ctx.rank) +
                      " could not connect to its peers: " + first_line(e.what()),
                  "gloo", "set GLOO_SOCKET_IFNAME to the interface the nodes share");
    }
#else
    throw Error("this build has no Gloo backend (its declarations were not found)",
                "DISTRIBUTED.BACKEND=gloo", "see src/distributed/gloo_shim/README.md");
#endif
  } else if (ctx.backend == "nccl") {
#ifdef LARGEDET_HAVE_NCCL
    // ProcessGroupNCCL reads these at construction and has no Options field for them. Once, before
    // the first group starts its watchdog thread: setenv is not safe alongside getenv.
    static std::once_flag env_once;
    std::call_once(env_once, [] {
      for (const auto& setting : nccl_fault_env(process_environment())) {
        if (!setting.from_user) ::setenv(setting.name.c_str(), setting.value.c_str(), 0);
        log::debug() << "distributed: NCCL " << setting.name << "=" << setting.value
                     << (setting.from_user ? " (from the environment)" : "");
      }
    });
    const auto index = static_cast<c10::DeviceIndex>(ctx.cuda_device());
    c10::cuda::set_device(index);
    device = c10::Device(c10::kCUDA, index);
    auto options = c10d::ProcessGroupNCCL::Options::create();
    // c10d's watchdog marks a collective past this as failed (our watchdog then reports it); with
    // a user's blocking wait it also bounds every wait().
    options->timeout = ctx.timeout;
    backend =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, ctx.rank, ctx.world_size, options);
#else
    throw Error("this build has no NCCL backend (CUDA off or nccl.h not found)",
                "DISTRIBUTED.BACKEND=nccl", "use gloo, or build with CUDA and NCCL headers");
#endif
  } else {
    throw Error("unknown distributed backend '" + ctx.backend + "'", "DISTRIBUTED.BACKEND",
                "use auto, gloo or nccl");
  }
  log::debug() << "distributed: group '" << name << "', " << ctx.describe() << ", connected";
  return std::make_shared<C10dProcessGroup>(ctx, store, backend, device);
}

std::shared_ptr<ProcessGroup> C10dProcessGroup::new_group(const std::string& name) {
  return connect(context_, store_, name);
}

}  // namespace

std::vector<NcclEnvSetting> nccl_fault_env(const Environment& env) {
  auto find = [&](std::initializer_list<const char*> names) -> std::optional<NcclEnvSetting> {
    for (const char* name : names)  // c10d's order: the first name set wins
      if (auto it = env.find(name); it != env.end()) return NcclEnvSetting{name, it->second, true};
    return std::nullopt;
  };
  std::vector<NcclEnvSetting> settings;
  // No blocking wait: wait() only makes the current stream wait for NCCL's, so SyncBN's two
  // collectives per layer and GradientSync's buckets never stall the host; our watchdog
  // (CollectiveWatchdog) names a failure instead. 0 (NoHandling) keeps c10d's own watchdog from
  // tearing the process down first (its default, 3, rethrows on its thread, racing our report).
  auto blocking = find({"TORCH_NCCL_BLOCKING_WAIT", "NCCL_BLOCKING_WAIT"});
  settings.push_back(blocking.value_or(NcclEnvSetting{"TORCH_NCCL_BLOCKING_WAIT", "0"}));
  auto handling = find({"TORCH_NCCL_ASYNC_ERROR_HANDLING", "NCCL_ASYNC_ERROR_HANDLING"});
  settings.push_back(handling.value_or(NcclEnvSetting{"TORCH_NCCL_ASYNC_ERROR_HANDLING", "0"}));
  return settings;
}

std::shared_ptr<ProcessGroup> create_c10d_process_group(const Context& ctx) {
  return connect(ctx, open_store(ctx), "default");
}

}  // namespace largedet::distributed
