// largedet config: print or check the effective configuration.
#include <iostream>

#include "command_registry.h"
#include "largedet/core/config.h"
#include "largedet/core/config_schema.h"
#include "largedet/distributed/context.h"
#include "largedet/engine/runtime.h"
#include "largedet/engine/trainer.h"

namespace {

struct ConfigArgs {
  std::string file;
  std::vector<std::string> overrides;
  bool dump = false;
  bool keys = false;
  bool raw = false;
};

void setup_config(CLI::App& cmd) {
  auto args = std::make_shared<ConfigArgs>();
  cmd.add_option("--config,-c", args->file, "recipe YAML (default: the built-in defaults)")
      ->check(CLI::ExistingFile);
  cmd.add_flag("--dump", args->dump, "print the effective configuration as YAML");
  cmd.add_flag("--keys", args->keys,
               "print every key: value, where it came from, type, whether the name is "
               "detectron2's or LargeDet's, and what it does");
  cmd.add_flag("--raw", args->raw,
               "show the recipe's values as written, before dataset names, architecture "
               "defaults and batch scaling (for the launcher's world size) are applied");
  cmd.add_option("overrides", args->overrides, "KEY=VALUE overrides, e.g. SOLVER.BASE_LR=0.02");
  cmd.callback([args] {
    largedet::Config config = largedet::Config::defaults();
    if (!args->file.empty()) config.merge_file(args->file);
    config.apply_overrides(args->overrides);
    if (!args->raw) {
      const int world = largedet::distributed::Context::from_env().world_size;
      for (const auto& note : largedet::engine::resolve_recipe(config, world))
        std::cerr << "# " << note << "\n";
      // What train would refuse before reading data, refused here too.
      if (args->dump || !args->keys) largedet::engine::check_recipe(config, world);
    }
    if (args->keys) {
      for (const auto& spec : largedet::config_schema()) {
        std::cout << spec.key << " = " << config.value_text(spec.key) << "  # "
                  << config.source(spec.key) << "; "
                  << (spec.origin == largedet::KeyOrigin::kDetectron2 ? "detectron2" : "LargeDet")
                  << " key, " << largedet::value_type_name(spec.type) << "; " << spec.help << "\n";
      }
    }
    if (args->dump || !args->keys) std::cout << config.dump();
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("config",
                          "Print the effective configuration (defaults <- recipe <- overrides); "
                          "errors name unknown keys and the closest known one",
                          setup_config);
