// largedet-torch: every command of the largedet tool, LibTorch loaded. Users run bin/largedet (the
// front, tools/front_main.cpp), which hands it the command lines it cannot run itself. Commands
// live in tools/commands/ and register themselves.
#include "command_registry.h"

int main(int argc, char** argv) { return largedet::tools::run_command_line(argc, argv); }
