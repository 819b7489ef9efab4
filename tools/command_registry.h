// Commands register themselves from tools/commands/<name>.cpp:
//   LARGEDET_REGISTER_COMMAND("bench optim", "Time one optimizer step ...", setup_bench_optim);
// A path with a space is a subcommand of a group ("bench"); setup adds options and a callback.
// A command is registered only once it works: no placeholders.
#pragma once

#include <CLI/CLI.hpp>

#include <any>
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
// The registered command a command line names ("evaluate", "bench eval"; options before it are
// skipped), or "" if it names none of them. The front runs these itself (tools/front_main.cpp).
std::string registered_command(int argc, char** argv);
// Whether argv[i] is the front's own option (`--log-level LEVEL` or `--log-level=LEVEL`, given
// before the command): the number of entries it takes (0: it is not), its value in `level`
// (unchanged when the value is missing).
int front_option(char** argv, int i, std::string& level);

// A mode of a Torch-free command that needs LibTorch (evaluate --config) registers from a source
// that only largedet-torch links:
//   LARGEDET_REGISTER_TORCH_MODE("evaluate --config", [](const std::any& args) { ... });
// run_torch_mode runs it there. The front, where it is not registered, hands the whole command line
// to largedet-torch instead (tools/executables.h), which parses it again and runs it.
using TorchMode = std::function<void(const std::any& args)>;
bool register_torch_mode(const std::string& name, TorchMode mode);
void run_torch_mode(const std::string& name, const std::any& args);

// Parses and runs a command line against the registered commands: main() of both executables.
int run_command_line(int argc, char** argv);

}  // namespace largedet::tools

#define LARGEDET_CONCAT_INNER(a, b) a##b
#define LARGEDET_CONCAT(a, b) LARGEDET_CONCAT_INNER(a, b)
#define LARGEDET_REGISTER_COMMAND(path, description, setup)          \
  static const bool LARGEDET_CONCAT(registered_command_, __LINE__) = \
      ::largedet::tools::register_command({path, description, setup})
#define LARGEDET_REGISTER_TORCH_MODE(name, mode)                  \
  static const bool LARGEDET_CONCAT(registered_mode_, __LINE__) = \
      ::largedet::tools::register_torch_mode(name, mode)
