// Backbone pretraining on an image classification set (`largedet pretrain`): the detector's ResNet
// body, exactly as MODEL.RESNETS.* and MODEL.BACKBONE build it, with global average pooling and a
// linear classifier over the ImageFolder's classes, trained with SGD (momentum 0.9, weight decay
// 1e-4 on conv and linear weights), linear warmup then cosine decay, random horizontal flips and
// the detector's input normalisation (MODEL.PIXEL_MEAN / PIXEL_STD on 0..255 RGB, as
// modeling::Transform). The result, OUTPUT/backbone.safetensors, holds the body's tensors alone,
// named backbone.body.* as in the detector (BatchNorm running statistics included), so that
// MODEL.WEIGHTS loads it with the FPN and heads left at their initialisation. docs/pretrain.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "largedet/modeling/backbone/resnet.h"

namespace largedet {
class Config;
}

namespace largedet::engine {

struct PretrainOptions {
  std::string data_dir;    // DATA/train/<class>/*.jpg, and DATA/val/<class>/* if there is one
  std::string output_dir;  // metrics.jsonl, pretrain_checkpoint.safetensors, backbone.safetensors
  int64_t epochs = 20;
  int64_t batch = 128;
  double lr = 0.1;  // the peak LR, after warmup
  double warmup_epochs = 1.0;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  // Images are resized (shorter side, then a centre crop) to image_size x image_size when they
  // are not already; 0 takes the first training image's shorter side.
  int64_t image_size = 0;
  int64_t log_period = 50;  // iterations between progress lines (0: one line per epoch)
  bool force = false;       // overwrite an OUTPUT/backbone.safetensors that exists
  bool resume = false;      // continue from OUTPUT/pretrain_checkpoint.safetensors (fresh if none)
  // Stop after this many epochs of this call, leaving the checkpoint for --resume (a run in time
  // slices; 0: train to the end).
  int64_t stop_after = 0;
};

struct PretrainResult {
  std::vector<std::string> classes;
  int64_t train_images = 0, val_images = 0, skipped_images = 0;
  int64_t epochs_run = 0;        // in this call (a resumed run counts only its own)
  double train_loss = 0;         // mean over the last epoch
  double train_accuracy = 0;     // top-1 over the last epoch's training batches (flipped)
  double val_top1 = -1;          // last epoch's; -1 without a val split
  double seconds_per_epoch = 0;  // mean training time per epoch (evaluation excluded)
  std::string weights_path;      // OUTPUT/backbone.safetensors, once written
  bool finished = false;  // all epochs done and the weights written (not so after stop_after)
};

// The ResNet the detector of `config` builds as its body (its MODEL.RESNETS.* widths, depth,
// groups and stride placement), set up for pretraining: every stage trained (FREEZE_AT 0), all
// four stages built, and BN wherever the recipe's NORM is FrozenBN, BN or SyncBN (pretraining is
// one process, where SyncBN is BN); GN stays GN. `why` (may be null) says what was changed.
modeling::ResNetOptions pretrain_resnet_options(const Config& config, std::string* why = nullptr);

// Trains and writes OUTPUT/backbone.safetensors. Throws largedet::Error for bad input (no data,
// an empty class folder, non-positive epochs, batch or LR, an existing backbone.safetensors
// without force, ...), each saying what to do. Unreadable images are skipped and counted.
PretrainResult pretrain(const Config& config, const PretrainOptions& options);

}  // namespace largedet::engine
