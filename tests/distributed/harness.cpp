#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#include <array>
#include <cstdio>
#include <cstdlib>

namespace largedet::test {

Run launch_workers(int nproc, const std::string& worker,
                   const std::map<std::string, std::string>& env, const std::string& launch_args) {
  char self[4096];
  ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  self[len > 0 ? len : 0] = '\0';
  std::string command = "env OMP_NUM_THREADS=1";
  for (const auto& [key, value] : env) command += " " + key + "=" + quote(value);
  command += " " + quote(LARGEDET_CLI) + " launch --nproc-per-node " + std::to_string(nproc) +
             " --master-port 0 " + launch_args + " -- " + quote(self) +
             " --gtest_also_run_disabled_tests --gtest_filter=DistWorker.DISABLED_" + worker;
  return run_shell(command);
}

std::string param(const std::string& name, const std::string& fallback) {
  const char* value = std::getenv(name.c_str());
  return value && *value ? value : fallback;
}

std::shared_ptr<distributed::ProcessGroup> init_worker(double timeout_s) {
  at::set_num_threads(1);
  distributed::ContextOptions options;
  options.backend = "gloo";
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  return distributed::init(options);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t size = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace largedet::test
