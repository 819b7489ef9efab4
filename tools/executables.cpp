#include "executables.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "largedet/core/error.h"

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
