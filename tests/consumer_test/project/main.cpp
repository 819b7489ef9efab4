// An outside project using the installed package: config, PMD-LAMB, one step; then a two-iteration
// training run with a hook of its own, added without any change to LargeDet.
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "largedet/core/config.h"
#include "largedet/data/synthetic.h"
#include "largedet/engine/trainer.h"
#include "largedet/solver/lamb.h"

namespace {

// Counts the steps it sees and keeps the last loss.
struct LossRecorder : largedet::engine::HookBase {
  void after_step(largedet::engine::Trainer& trainer) override {
    ++steps;
    last_loss = trainer.last_step().losses.at("total_loss");
  }
  int steps = 0;
  double last_loss = 0;
};

bool train_with_a_hook(const std::string& dir) {
  largedet::data::SynthOptions synth;
  synth.out_dir = dir + "/data";
  synth.images = 8;
  synth.size = 64;
  const auto data = largedet::data::write_synthetic_coco(synth);
  largedet::Config config = largedet::Config::defaults();
  config.apply_overrides(
      {"DATASETS.TRAIN_ANNOTATIONS=" + data.train_json, "DATASETS.TRAIN_IMAGES=" + data.train_dir,
       "MODEL.ROI_HEADS.NUM_CLASSES=4", "MODEL.RESNETS.DEPTH=18",
       "MODEL.RESNETS.RES2_OUT_CHANNELS=8", "MODEL.RESNETS.STEM_OUT_CHANNELS=8",
       "MODEL.RESNETS.WIDTH_PER_GROUP=8", "MODEL.FPN.OUT_CHANNELS=16",
       "MODEL.ROI_BOX_HEAD.FC_DIM=32", "INPUT.MIN_SIZE_TRAIN=[48]", "INPUT.MAX_SIZE_TRAIN=64",
       "SOLVER.IMS_PER_BATCH=2", "SOLVER.IMS_PER_DEVICE=2", "SOLVER.MAX_ITER=2", "SOLVER.STEPS=[1]",
       "SOLVER.WARMUP_ITERS=1", "DATALOADER.NUM_WORKERS=0", "NUM_THREADS=1", "LOG_LEVEL=warning"});
  largedet::engine::TrainOptions options;
  options.output_dir = dir + "/run";
  largedet::engine::Trainer trainer(config, options);
  auto recorder = std::make_shared<LossRecorder>();
  trainer.register_hooks({recorder});
  const auto result = trainer.train();
  const bool ok = recorder->steps == 2 && result.iteration == 2 &&
                  std::isfinite(recorder->last_loss) && recorder->last_loss > 0;
  std::cout << "hook saw " << recorder->steps << " steps, last loss " << recorder->last_loss
            << (ok ? " ok" : " FAILED") << "\n";
  return ok;
}

}  // namespace

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
  // mkdtemp and rm rather than std::filesystem: libtorch.so exports std::filesystem symbols of
  // its own build, which a consumer binary may bind to (remove_all crashed in one).
  char pattern[] = "/tmp/largedet_consumer_XXXXXX";
  const char* made = ::mkdtemp(pattern);
  if (made == nullptr) return 1;
  const std::string dir = made;
  const bool trained = train_with_a_hook(dir);
  if (std::system(("rm -rf '" + dir + "'").c_str()) != 0)
    std::cerr << "could not remove " << dir << "\n";
  return moved && trained ? 0 : 1;
}
