// Context::from_env for each launcher's variables, and its errors.
#include <gtest/gtest.h>

#include "largedet/core/error.h"
#include "largedet/distributed/context.h"
#include "largedet/distributed/process_group.h"

using largedet::distributed::Context;
using largedet::distributed::ContextOptions;
using largedet::distributed::Environment;

namespace {
ContextOptions gloo() {
  ContextOptions options;
  options.backend = "gloo";
  return options;
}
}  // namespace

TEST(Context, NoEnvironmentIsAWorldOfOne) {
  Context ctx = Context::from_env(Environment{}, gloo());
  EXPECT_EQ(ctx.rank, 0);
  EXPECT_EQ(ctx.world_size, 1);
  EXPECT_FALSE(ctx.is_distributed());
  EXPECT_EQ(ctx.source, "none");
  // And a world of one needs no store: the group is local.
  auto group = largedet::distributed::create_process_group(ctx);
  EXPECT_EQ(group->size(), 1);
}

TEST(Context, Torchrun) {
  Context ctx = Context::from_env({{"RANK", "5"},
                                   {"WORLD_SIZE", "8"},
                                   {"LOCAL_RANK", "1"},
                                   {"LOCAL_WORLD_SIZE", "4"},
                                   {"MASTER_ADDR", "10.1.2.3"},
                                   {"MASTER_PORT", "1234"},
                                   {"TORCHELASTIC_USE_AGENT_STORE", "True"}},
                                  gloo());
  EXPECT_EQ(ctx.rank, 5);
  EXPECT_EQ(ctx.world_size, 8);
  EXPECT_EQ(ctx.local_rank, 1);
  EXPECT_EQ(ctx.local_world_size, 4);
  EXPECT_EQ(ctx.master_addr, "10.1.2.3");
  EXPECT_EQ(ctx.master_port, 1234);
  EXPECT_TRUE(ctx.store_hosted_by_launcher);
  EXPECT_EQ(ctx.source, "torchrun");
  EXPECT_EQ(ctx.backend, "gloo");
}

TEST(Context, OpenMpi) {
  Context ctx = Context::from_env({{"OMPI_COMM_WORLD_RANK", "3"},
                                   {"OMPI_COMM_WORLD_SIZE", "4"},
                                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                   {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                   {"MASTER_ADDR", "node0"}},
                                  gloo());
  EXPECT_EQ(ctx.rank, 3);
  EXPECT_EQ(ctx.world_size, 4);
  EXPECT_EQ(ctx.local_rank, 1);
  EXPECT_EQ(ctx.local_world_size, 2);
  EXPECT_EQ(ctx.master_addr, "node0");
  EXPECT_EQ(ctx.master_port, 29500);
  EXPECT_FALSE(ctx.store_hosted_by_launcher);
  EXPECT_EQ(ctx.source, "openmpi");
}

TEST(Context, Slurm) {
  Context ctx = Context::from_env({{"SLURM_PROCID", "6"},
                                   {"SLURM_NTASKS", "8"},
                                   {"SLURM_LOCALID", "2"},
                                   {"SLURM_TASKS_PER_NODE", "4(x2)"},
                                   {"SLURM_JOB_NODELIST", "gpu[017-018],cpu3"}},
                                  gloo());
  EXPECT_EQ(ctx.rank, 6);
  EXPECT_EQ(ctx.world_size, 8);
  EXPECT_EQ(ctx.local_rank, 2);
  EXPECT_EQ(ctx.local_world_size, 4);
  EXPECT_EQ(ctx.master_addr, "gpu017");
  EXPECT_EQ(ctx.source, "slurm");
}

TEST(Context, TorchrunWinsOverSlurm) {
  // torchrun inside an salloc: its variables describe the processes it started.
  Context ctx = Context::from_env(
      {{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}, gloo());
  EXPECT_EQ(ctx.rank, 1);
  EXPECT_EQ(ctx.world_size, 2);
}

TEST(Context, FirstSlurmHost) {
  EXPECT_EQ(largedet::distributed::first_slurm_host("node7"), "node7");
  EXPECT_EQ(largedet::distributed::first_slurm_host("a1,b2"), "a1");
  EXPECT_EQ(largedet::distributed::first_slurm_host("gpu[012-015,020],cpu1"), "gpu012");
  EXPECT_EQ(largedet::distributed::first_slurm_host("gpu5,x[1-2]"), "gpu5");
}

TEST(Context, ErrorsNameTheVariable) {
  try {
    Context::from_env({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, gloo());
    FAIL() << "rank outside the world accepted";
  } catch (const largedet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the world of 2"), std::string::npos) << e.what();
    EXPECT_EQ(e.where(), "RANK");
  }
  try {
    Context::from_env({{"RANK", "x1"}, {"WORLD_SIZE", "2"}}, gloo());
    FAIL() << "non-integer rank accepted";
  } catch (const largedet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK='x1' is not an integer"), std::string::npos);
  }
  EXPECT_THROW(
      Context::from_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, gloo()),
      largedet::Error);
  ContextOptions bad;
  bad.backend = "mpi";
  EXPECT_THROW(Context::from_env(Environment{}, bad), largedet::Error);
}

TEST(Context, TimeoutAndAutoBackend) {
  ContextOptions options;
  options.timeout = std::chrono::seconds(7);
  Context ctx = Context::from_env(Environment{}, options);
  EXPECT_EQ(ctx.timeout, std::chrono::seconds(7));
  EXPECT_EQ(ctx.backend, "gloo");  // a CPU model, whatever GPUs the machine has
  EXPECT_EQ(ctx.gpu, -1);
  EXPECT_THROW(ctx.cuda_device(), largedet::Error);
}

// The device count is faked (ContextOptions::visible_gpus), so these run on any machine.
Environment two_local_ranks(int local_rank) {
  return {{"RANK", std::to_string(local_rank)},
          {"WORLD_SIZE", "2"},
          {"LOCAL_RANK", std::to_string(local_rank)},
          {"LOCAL_WORLD_SIZE", "2"}};
}

TEST(Context, CpuWorkersOnAGpuMachineUseGloo) {
  // `make demo` on a one-GPU machine: two CPU workers, auto backend.
  ContextOptions options;
  options.visible_gpus = 1;
  for (int r = 0; r < 2; ++r) {
    Context ctx = Context::from_env(two_local_ranks(r), options);
    EXPECT_EQ(ctx.backend, "gloo");
    EXPECT_EQ(ctx.gpu, -1);
    EXPECT_EQ(ctx.describe().find("cuda"), std::string::npos) << ctx.describe();
  }
  options.backend = "nccl";
  try {
    Context::from_env(two_local_ranks(0), options);
    FAIL() << "NCCL with a CPU model was accepted";
  } catch (const largedet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("MODEL.DEVICE"), std::string::npos) << e.what();
  }
}

TEST(Context, CudaModelTakesOneGpuPerLocalRank) {
  ContextOptions options;
  options.cuda_model = true;
  options.visible_gpus = 4;
  for (int r = 0; r < 2; ++r) {
    Context ctx = Context::from_env(two_local_ranks(r), options);
    EXPECT_EQ(ctx.backend, "nccl");
    EXPECT_EQ(ctx.cuda_device(), r);
    EXPECT_NE(ctx.describe().find("nccl on cuda:" + std::to_string(r)), std::string::npos)
        << ctx.describe();
  }
  // One process, one GPU.
  options.visible_gpus = 1;
  EXPECT_EQ(Context::from_env(Environment{}, options).cuda_device(), 0);
  // srun --gpus-per-task=1: each task sees one GPU, its own, whatever its local rank.
  Context slurm = Context::from_env({{"SLURM_PROCID", "3"},
                                     {"SLURM_NTASKS", "4"},
                                     {"SLURM_LOCALID", "3"},
                                     {"SLURM_TASKS_PER_NODE", "4"}},
                                    options);
  EXPECT_EQ(slurm.cuda_device(), 0);
}

TEST(Context, MoreLocalRanksThanGpusIsAnError) {
  ContextOptions options;
  options.cuda_model = true;
  for (int visible : {0, 1}) {
    options.visible_gpus = visible;
    try {
      Context::from_env(two_local_ranks(1), options);
      FAIL() << "2 local ranks on " << visible << " GPU(s) were accepted";
    } catch (const largedet::Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("2 local ranks share " + std::to_string(visible) + " visible GPU"),
                std::string::npos)
          << what;
    }
  }
  options.visible_gpus = 3;  // 4 ranks on 3 GPUs: no wrap-around onto GPU 0
  EXPECT_THROW(
      Context::from_env(
          {{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "4"}},
          options),
      largedet::Error);
}
