// largedet: the command-line tool. Commands live in tools/commands/ and register themselves.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "command_registry.h"
#include "largedet/core/error.h"
#include "largedet/core/logging.h"

int main(int argc, char** argv) {
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
  app.parse_complete_callback(
      [&] { largedet::log::set_level(largedet::log::parse_level(log_level)); });
  largedet::tools::install_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const largedet::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
