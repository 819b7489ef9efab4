// largedet pretrain: the detector's ResNet body pretrained as a classifier on an ImageFolder
// (engine/pretrain.h), written as backbone.safetensors for MODEL.WEIGHTS.
#include <iostream>
#include <memory>

#include "command_registry.h"
#include "largedet/core/config.h"
#include "largedet/engine/pretrain.h"

namespace {

struct PretrainArgs {
  std::string file;
  std::vector<std::string> overrides;
  largedet::engine::PretrainOptions options;
};

void setup_pretrain(CLI::App& cmd) {
  auto args = std::make_shared<PretrainArgs>();
  auto& o = args->options;
  cmd.add_option("--config,-c", args->file,
                 "the detector's recipe: its MODEL.RESNETS.* and MODEL.BACKBONE build the "
                 "network, MODEL.PIXEL_MEAN/STD normalise, SEED, NUM_THREADS, MODEL.DEVICE")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("overrides", args->overrides, "KEY=VALUE overrides of the recipe");
  cmd.add_option("--data,-d", o.data_dir,
                 "ImageFolder: DATA/train/<class>/*.jpg|png and optionally DATA/val/<class>/* "
                 "(`largedet synth --task classify` writes one)")
      ->required();
  cmd.add_option("--output,-o", o.output_dir,
                 "where backbone.safetensors, metrics.jsonl and the per-epoch checkpoint go")
      ->required();
  cmd.add_option("--epochs", o.epochs, "epochs (20)");
  cmd.add_option("--batch", o.batch, "images per step (128)");
  cmd.add_option("--lr", o.lr, "peak learning rate after warmup; cosine decay to 0 (0.1)");
  cmd.add_option("--warmup-epochs", o.warmup_epochs, "linear warmup, in epochs (1)");
  cmd.add_option("--weight-decay", o.weight_decay, "on conv and linear weights (1e-4)");
  cmd.add_option("--image-size", o.image_size,
                 "square input side: images are resized and centre-cropped to it (0: the first "
                 "training image's shorter side)");
  cmd.add_option("--log-period", o.log_period, "iterations between progress lines (50; 0: none)");
  cmd.add_option("--stop-after", o.stop_after,
                 "stop after this many epochs, keeping the checkpoint for --resume (0: train to "
                 "the end)");
  auto* resume = cmd.add_flag("--resume", o.resume,
                              "continue from the output's per-epoch checkpoint (fresh if none)");
  cmd.add_flag("--force", o.force,
               "overwrite an existing backbone.safetensors, or start over instead of resuming")
      ->excludes(resume);
  cmd.footer(
      "Then train the detector from it: largedet train --config RECIPE "
      "MODEL.WEIGHTS=OUTPUT/backbone.safetensors (docs/pretrain.md).");
  cmd.callback([args] {
    const auto config = largedet::Config::from_file(args->file, args->overrides);
    const auto r = largedet::engine::pretrain(config, args->options);
    if (!r.finished) {
      std::cout << "stopped after " << r.epochs_run << " epochs; continue with --resume\n";
      return;
    }
    std::cout << "pretrained on " << r.train_images << " images of " << r.classes.size()
              << " classes: train accuracy " << r.train_accuracy;
    if (r.val_images > 0) std::cout << ", val top-1 " << r.val_top1;
    std::cout << ", " << r.seconds_per_epoch << " s per epoch\n  " << r.weights_path << "\n";
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("pretrain",
                          "Pretrain the detector's ResNet body as a classifier on an ImageFolder "
                          "and write it as backbone.safetensors for MODEL.WEIGHTS",
                          setup_pretrain);
