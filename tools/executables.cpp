#include "executables.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <string>

#include "command_registry.h"
#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/core/threads.h"

// tools/CMakeLists.txt defines where each executable is from the other's folder.
#if !defined(LARGEDET_FRONT_TO_TORCH) || !defined(LARGEDET_TORCH_TO_FRONT)
#error "define LARGEDET_FRONT_TO_TORCH and LARGEDET_TORCH_TO_FRONT (tools/CMakeLists.txt)"
#endif

namespace largedet::tools {
namespace fs = std::filesystem;

fs::path self_executable() {
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find its own executable: " + ec.message(), "/proc/self/exe");
  return self;
}

namespace {
bool is_torch_executable(const fs::path& self) {
  return self.filename() == fs::path(LARGEDET_FRONT_TO_TORCH).filename();
}

// Whether to say which OpenMP wait policy was chosen: for the commands that run a model (not
// `sweep --summary`, which only reads the cells), unless the command line asks for less than info
// (`--log-level warning|error|off`, before the command; the command itself parses it, after the
// hand-over).
bool tell_wait_policy(char** argv) {
  static const std::set<std::string> kRunModels = {"train", "pretrain", "infer", "evaluate",
                                                   "bench", "sweep",    "launch"};
  std::string command;
  bool summary = false;
  for (int i = 1; argv[i] != nullptr; ++i) {
    std::string level;
    if (const int taken = front_option(argv, i, level)) {
      if (!level.empty() && level != "debug" && level != "info") return false;
      i += taken - 1;
      continue;
    }
    const std::string arg = argv[i];
    if (command.empty() && arg[0] != '-') command = arg;  // the first word
    summary = summary || arg == "--summary";
  }
  return kRunModels.count(command) != 0 && !(command == "sweep" && summary);
}
}  // namespace

fs::path front_executable() {
  const auto self = self_executable();
  return is_torch_executable(self)
             ? (self.parent_path() / LARGEDET_TORCH_TO_FRONT).lexically_normal()
             : self;
}

fs::path torch_executable() {
  const auto self = self_executable();
  return is_torch_executable(self)
             ? self
             : (self.parent_path() / LARGEDET_FRONT_TO_TORCH).lexically_normal();
}

void exec_torch_executable(char** argv) {
  const std::string path = torch_executable().string();
  // Here, before LibTorch's libgomp loads and reads it.
  const auto policy = choose_omp_wait_policy();
  if (!policy.empty() && tell_wait_policy(argv)) log::info() << policy;
  ::execv(path.c_str(), argv);
  throw Error(
      std::string("cannot run ") + path + ": " + std::strerror(errno), "largedet",
      "the commands that need LibTorch live there: build it with make build or cmake --build "
      "build --target largedet_torch_cli");
}

std::string find_venv_python() {
  std::error_code ec;
  for (auto dir = self_executable().parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    const auto python = dir / ".venv" / "bin" / "python";
    if (fs::exists(python, ec)) return python.string();
  }
  if (fs::exists(LARGEDET_CONFIGURED_PYTHON, ec)) return LARGEDET_CONFIGURED_PYTHON;
  return "";
}

}  // namespace largedet::tools
