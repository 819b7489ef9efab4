// largedet synth: write a synthetic COCO-format dataset (see largedet/data/synthetic.h).
#include <iostream>
#include <memory>

#include "command_registry.h"
#include "largedet/data/synthetic.h"

namespace {

void setup_synth(CLI::App& cmd) {
  auto options = std::make_shared<largedet::data::SynthOptions>();
  cmd.add_option("--out", options->out_dir, "output directory")->required();
  cmd.add_option("--images", options->images, "number of images (train + val)")
      ->check(CLI::Range(1, 10000000));
  cmd.add_option("--size", options->size, "long side in pixels (short side = 3/4 of it)")
      ->check(CLI::Range(32, 8192));
  cmd.add_option("--seed", options->seed, "random seed: same seed, same bytes");
  cmd.add_option("--val-fraction", options->val_fraction, "fraction of images in val")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--portrait-fraction", options->portrait_fraction,
                 "fraction of portrait images (0 gives only landscape, e.g. 640x480)")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_option("--max-objects", options->max_objects, "shapes per image, at most")
      ->check(CLI::Range(1, 1000));
  cmd.callback([options] {
    const auto r = largedet::data::write_synthetic_coco(*options);
    std::cout << "wrote " << r.train_images << " train and " << r.val_images << " val images, "
              << r.annotations << " annotations\n"
              << "  " << r.train_json << "\n  " << r.val_json << "\n";
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("synth",
                          "Write a synthetic COCO-format dataset (shapes on textured backgrounds, "
                          "polygon masks, train/val split); same seed, same bytes",
                          setup_synth);
