// Commands register themselves from tools/commands/<name>.cpp:
//   LARGEDET_REGISTER_COMMAND("bench optim", "Time one optimizer step ...", setup_bench_optim);
// A path with a space is a subcommand of a group ("bench"); setup adds options and a callback.
// A command is registered only once it works: no placeholders.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace largedet::tools {

struct Command {
  std::string path;         // "train", "bench optim"
  std::string description;  // one line for --help
  std::function<void(CLI::App&)> setup;
};

std::vector<Command>& command_registry();
bool register_command(Command command);
// Adds every registered command (and the groups they live in) to `app`.
void install_commands(CLI::App& app);

}  // namespace largedet::tools

#define LARGEDET_CONCAT_INNER(a, b) a##b
#define LARGEDET_CONCAT(a, b) LARGEDET_CONCAT_INNER(a, b)
#define LARGEDET_REGISTER_COMMAND(path, description, setup)          \
  static const bool LARGEDET_CONCAT(registered_command_, __LINE__) = \
      ::largedet::tools::register_command({path, description, setup})
