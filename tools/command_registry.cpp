#include "command_registry.h"

#include <algorithm>
#include <csignal>
#include <iostream>
#include <map>

#include "executables.h"
#include "largedet/core/error.h"
#include "largedet/core/logging.h"

namespace largedet::tools {
namespace {
// One-line descriptions of command groups.
const std::map<std::string, std::string> kGroups = {
    {"bench", "Benchmarks of LargeDet's components against references on this machine"},
};

std::map<std::string, TorchMode>& torch_modes() {
  static std::map<std::string, TorchMode> modes;
  return modes;
}

char** command_line = nullptr;  // run_command_line's argv, for the hand-over to largedet-torch
}  // namespace

std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

bool register_command(Command command) {
  command_registry().push_back(std::move(command));
  return true;
}

void install_commands(CLI::App& app) {
  auto commands = command_registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return a.path < b.path; });
  for (const auto& command : commands) {
    CLI::App* parent = &app;
    std::string name = command.path;
    if (auto space = name.find(' '); space != std::string::npos) {
      std::string group = name.substr(0, space);
      name = name.substr(space + 1);
      parent = nullptr;
      for (CLI::App* existing : app.get_subcommands([](CLI::App*) { return true; }))
        if (existing->get_name() == group) parent = existing;
      if (!parent) {
        auto it = kGroups.find(group);
        parent = app.add_subcommand(group, it == kGroups.end() ? "" : it->second);
        parent->require_subcommand(1);
      }
    }
    CLI::App* sub = parent->add_subcommand(name, command.description);
    command.setup(*sub);
  }
}

int front_option(char** argv, int i, std::string& level) {
  const std::string arg = argv[i];
  if (arg.rfind("--log-level=", 0) == 0) {
    level = arg.substr(12);
    return 1;
  }
  if (arg != "--log-level") return 0;
  if (argv[i + 1] == nullptr) return 1;
  level = argv[i + 1];
  return 2;
}

std::string registered_command(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    std::string level;
    if (const int taken = front_option(argv, i, level)) {
      i += taken - 1;
      continue;
    }
    const std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-') {
      if (path.empty()) continue;  // the front's own options
      return "";                   // a group's option (bench --help): no command named
    }
    path = path.empty() ? arg : path + " " + arg;
    bool group = false;
    for (const Command& command : command_registry()) {
      if (command.path == path) return path;
      group = group || command.path.rfind(path + " ", 0) == 0;
    }
    if (!group) return "";
  }
  return "";
}

bool register_torch_mode(const std::string& name, TorchMode mode) {
  return torch_modes().emplace(name, std::move(mode)).second;
}

void run_torch_mode(const std::string& name, const std::any& args) {
  const auto it = torch_modes().find(name);
  if (it != torch_modes().end()) return it->second(args);
  LARGEDET_CHECK(command_line, "run_torch_mode(", name, ") outside run_command_line");
  exec_torch_executable(command_line);
}

int run_command_line(int argc, char** argv) {
  command_line = argv;
  // A reader that goes away (a closed ssh session, `| head`, a killed sweep) must not kill a run
  // mid-iteration: writes to it fail instead, and the run goes on to its checkpoints.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "LargeDet: large-batch object detection training (Faster/Mask R-CNN, RetinaNet) with "
      "PMD-LAMB, SyncBN and LR scaling rules with warmup"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warning, error or off")
      ->capture_default_str();
  app.parse_complete_callback([&] { log::set_level(log::parse_level(log_level)); });
  install_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace largedet::tools
