// Running shell commands from tests (the CLI, launchers), shared by every test binary.
#pragma once

#include <string>

namespace largedet::test {

struct Run {
  int code = -1;       // exit code; 128 + signal when killed
  std::string output;  // stdout and stderr together
};

Run run_shell(const std::string& command);
// Single-quotes `text` for sh.
std::string quote(const std::string& text);

}  // namespace largedet::test
