// The two executables of the largedet command (docs/architecture.md, "The front"):
// bin/largedet, the front, which links no LibTorch and runs the commands built into it, and
// libexec/largedet-torch, which has every command. Both find each other and the repository's
// Python from where they are, in the build tree as in an installed prefix.
#pragma once

#include <filesystem>
#include <string>

namespace largedet::tools {

// This process's executable (/proc/self/exe).
std::filesystem::path self_executable();
// bin/largedet: the command a user runs (what `bench eval` times as a whole process).
std::filesystem::path front_executable();
// libexec/largedet-torch.
std::filesystem::path torch_executable();
// Replaces this process by largedet-torch with the same arguments (same process id, so signals
// and the exit code are the command's own). Throws largedet::Error, saying how to build it, when
// it cannot be run.
[[noreturn]] void exec_torch_executable(char** argv);
// The nearest enclosing folder's .venv/bin/python from the executable (the build tree lives in the
// repository, whose venv has torch, torchvision and pycocotools); else the Python the build was
// configured with (LARGEDET_PYTHON: a build directory outside the repository); "" if neither
// exists.
std::string find_venv_python();

}  // namespace largedet::tools
