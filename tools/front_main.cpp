// largedet: the command a user runs. It links no LibTorch, whose start-up alone (the static
// registration of every operator) takes ~0.5 s: the commands built into it (evaluate on files,
// plot, expand-hierarchy, bench eval) start at once, and any other command line is handed
// unchanged to libexec/largedet-torch, which has every command (docs/architecture.md, "The front").
#include <iostream>

#include "command_registry.h"
#include "executables.h"
#include "largedet/core/error.h"

int main(int argc, char** argv) {
  using namespace largedet::tools;
  if (!registered_command(argc, argv).empty()) return run_command_line(argc, argv);
  try {
    exec_torch_executable(argv);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
