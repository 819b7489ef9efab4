// largedet config: print or check the effective configuration.
#include <iostream>

#include "command_registry.h"
#include "largedet/core/config.h"

namespace {

struct ConfigArgs {
  std::string file;
  std::vector<std::string> overrides;
  bool dump = false;
  bool keys = false;
};

void setup_config(CLI::App& cmd) {
  auto args = std::make_shared<ConfigArgs>();
  cmd.add_option("--config,-c", args->file, "recipe YAML (default: the built-in defaults)")
      ->check(CLI::ExistingFile);
  cmd.add_flag("--dump", args->dump, "print the effective configuration as YAML");
  cmd.add_flag("--keys", args->keys, "print every known key with where its value came from");
  cmd.add_option("overrides", args->overrides, "KEY=VALUE overrides, e.g. SOLVER.BASE_LR=0.02");
  cmd.callback([args] {
    largedet::Config config = largedet::Config::defaults();
    if (!args->file.empty()) config.merge_file(args->file);
    config.apply_overrides(args->overrides);
    if (args->keys) {
      for (const auto& key : config.keys())
        std::cout << key << "  # " << config.source(key) << "\n";
    }
    if (args->dump || !args->keys) std::cout << config.dump();
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("config",
                          "Print the effective configuration (defaults <- recipe <- overrides); "
                          "errors name unknown keys and the closest known one",
                          setup_config);
