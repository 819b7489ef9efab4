#include "command_registry.h"

#include <algorithm>
#include <map>

namespace largedet::tools {
namespace {
// One-line descriptions of command groups.
const std::map<std::string, std::string> kGroups = {
    {"bench", "Benchmarks of LargeDet's components against references on this machine"},
};
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

}  // namespace largedet::tools
