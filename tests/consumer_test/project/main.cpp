// An outside project using the installed package: config, PMD-LAMB, one step.
#include <torch/torch.h>

#include <iostream>

#include "largedet/core/config.h"
#include "largedet/solver/lamb.h"

int main() {
  largedet::Config config = largedet::Config::defaults();
  config.apply_overrides({"SOLVER.OPTIMIZER=pmd_lamb"});
  auto w = torch::ones({4}, torch::requires_grad());
  largedet::solver::Lamb lamb({w}, largedet::solver::LambOptions(0.1).decay_period(200));
  w.mutable_grad() = torch::ones({4});
  lamb.step();
  bool moved = w.lt(1).all().item<bool>();
  std::cout << config.get<std::string>("SOLVER.OPTIMIZER") << " step " << (moved ? "ok" : "FAILED")
            << "\n";
  return moved ? 0 : 1;
}
