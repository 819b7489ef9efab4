// Where this process sits in a distributed job: rank, world size, local rank and the rendezvous
// address, read from the environment that the launcher in use sets (largedet launch / torchrun,
// OpenMPI's mpirun, SLURM's srun). With none of them set the job is one process: world size 1,
// no environment needed and no communication.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace largedet::distributed {

// The environment as a map, so that tests can describe one without touching the real one.
using Environment = std::map<std::string, std::string>;
// A copy of this process's environment.
Environment process_environment();

struct ContextOptions {
  // "auto" (nccl for a CUDA model, else gloo), "gloo" or "nccl" (DISTRIBUTED.BACKEND).
  std::string backend = "auto";
  // The model runs on CUDA (MODEL.DEVICE cuda): then each local rank takes a GPU of its own.
  bool cuda_model = false;
  // The CUDA devices this process sees; -1 asks the CUDA runtime (tests fake a count).
  int visible_gpus = -1;
  // How long any collective or rendezvous may wait for a peer (DISTRIBUTED.TIMEOUT_SECONDS).
  std::chrono::milliseconds timeout = std::chrono::seconds(1800);
};

struct Context {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string backend = "gloo";  // resolved: "gloo" or "nccl"
  int gpu = -1;                  // this rank's CUDA device; -1 for a CPU model
  std::chrono::milliseconds timeout = std::chrono::seconds(1800);
  // True when the rendezvous store is served by the launcher (largedet launch, torchrun's agent)
  // rather than by rank 0: then a dead rank 0 does not take the store down with it.
  bool store_hosted_by_launcher = false;
  // Which variables were used: "none", "torchrun", "openmpi" or "slurm" (for messages).
  std::string source = "none";

  bool is_distributed() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
  // This rank's GPU (a CUDA model only; throws otherwise): its local rank when the process sees
  // at least one GPU per local rank, 0 when it sees exactly one under SLURM (srun
  // --gpus-per-task=1 shows each task its own). Fewer GPUs than local ranks is an error at
  // from_env, naming both counts, never a wrap-around that would put two ranks on one GPU.
  int cuda_device() const;

  // Reads torchrun-style RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT first,
  // then OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE}, then SLURM_{PROCID,NTASKS,LOCALID}
  // (master address from SLURM_JOB_NODELIST's first host). Throws largedet::Error naming the
  // variable when a value is malformed or inconsistent (rank outside the world, ...).
  static Context from_env(const ContextOptions& options = {});
  static Context from_env(const Environment& env, const ContextOptions& options = {});

  // "rank 1/4 (local 1/2), nccl on cuda:1 via 10.0.0.1:29500, from torchrun variables"
  std::string describe() const;
};

// The first host of a SLURM node list: "gpu[012-015,020],cpu1" -> "gpu012".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace largedet::distributed
