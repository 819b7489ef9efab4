// Backbone pretraining on an ImageFolder (see engine/pretrain.h).
#include "largedet/engine/pretrain.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/core/run_lock.h"
#include "largedet/data/image.h"
#include "largedet/data/image_folder.h"
#include "largedet/data/samplers.h"
#include "largedet/data/seed.h"
#include "largedet/engine/metrics_writer.h"
#include "largedet/engine/progress.h"
#include "largedet/modeling/build.h"
#include "largedet/tensor/parallel.h"
#include "largedet/tensor/safetensors.h"
#include "largedet/tensor/threads.h"

namespace largedet::engine {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kWeightsName = "backbone.safetensors";
constexpr const char* kCheckpointName = "pretrain_checkpoint.safetensors";
constexpr const char* kBodyPrefix = "backbone.body.";

// The detector's ResNet body, global average pooling and a linear classifier.
struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl(const modeling::ResNetOptions& options, int64_t classes) {
    body = register_module("body", modeling::ResNet(options));
    fc = register_module("fc", torch::nn::Linear(body->stage_channels().back(), classes));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return fc->forward(body->forward(x).back().mean({2, 3}));
  }
  modeling::ResNet body{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Classifier);

// A split decoded into memory: images [N, S, S, 3] uint8 RGB, labels [N] int64.
struct Split {
  torch::Tensor images, labels;
  int64_t skipped = 0;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// `image` resized so that its shorter side is `size` (antialiased bilinear), centre-cropped to
// size x size, as HWC uint8.
torch::Tensor square(const data::Image& image, int64_t size) {
  auto t = torch::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3},
                            torch::kUInt8);
  if (image.width == size && image.height == size) return t;
  const double scale = static_cast<double>(size) / std::min(image.width, image.height);
  const int64_t h = std::max<int64_t>(size, std::llround(image.height * scale));
  const int64_t w = std::max<int64_t>(size, std::llround(image.width * scale));
  auto f = t.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat);
  namespace F = torch::nn::functional;
  f = F::interpolate(f, F::InterpolateFuncOptions()
                            .size(std::vector<int64_t>{h, w})
                            .mode(torch::kBilinear)
                            .align_corners(false)
                            .antialias(scale < 1));
  const int64_t y0 = (h - size) / 2, x0 = (w - size) / 2;
  f = f[0].slice(1, y0, y0 + size).slice(2, x0, x0 + size);
  return f.round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
}

// Decodes every image of `folder` (in parallel), skipping and counting those that do not decode.
Split load_split(const data::ImageFolder& folder, int64_t size, const std::string& what) {
  const auto n = static_cast<int64_t>(folder.samples.size());
  const double bytes = static_cast<double>(n) * size * size * 3;
  if (bytes > 8.0 * (1ll << 30))
    throw Error("the " + what + " split would take " + std::to_string(bytes / (1ll << 30)) +
                    " GiB decoded at " + std::to_string(size) + " px",
                folder.root, "pretraining holds its images in memory: use --image-size smaller");
  std::vector<data::Image> decoded(static_cast<size_t>(n));
  std::vector<std::string> errors(static_cast<size_t>(n));
  at::parallel_for(0, n, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto& path = folder.samples[static_cast<size_t>(i)].path;
      try {
        const std::string bytes = read_file(path);
        decoded[i] = data::decode_image(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size(), static_cast<int>(size), path);
      } catch (const std::exception& e) {
        errors[i] = e.what();
        decoded[i] = data::Image{};
      }
    }
  });
  Split split;
  std::vector<int64_t> good;
  for (int64_t i = 0; i < n; ++i) {
    if (errors[i].empty()) {
      good.push_back(i);
      continue;
    }
    if (split.skipped++ == 0)
      log::warning() << "skipping unreadable image " << folder.samples[i].path << ": " << errors[i];
  }
  if (split.skipped > 0)
    log::warning() << what << ": skipped " << split.skipped << " unreadable images of " << n;
  const auto count = static_cast<int64_t>(good.size());
  split.images = torch::empty({count, size, size, 3}, torch::kUInt8);
  split.labels = torch::empty({count}, torch::kLong);
  std::vector<int64_t> per_class(folder.classes.size(), 0);
  for (int64_t k = 0; k < count; ++k) {
    const auto i = static_cast<size_t>(good[k]);
    split.images[k].copy_(square(decoded[i], size));
    split.labels[k] = folder.samples[i].label;
    ++per_class[static_cast<size_t>(folder.samples[i].label)];
    decoded[i] = data::Image{};
  }
  for (size_t c = 0; c < per_class.size(); ++c) {
    if (per_class[c] == 0)
      throw Error(
          "no image of class " + folder.classes[c] + " could be read in the " + what + " split",
          folder.root + "/" + folder.classes[c],
          "replace its images with readable JPEG or PNG files, or remove the folder");
  }
  return split;
}

// [B, 3, S, S] float, normalised as modeling::Transform does, mirrored where `flip` says.
torch::Tensor make_batch(const Split& split, const torch::Tensor& index, const torch::Tensor& flip,
                         const torch::Tensor& mean, const torch::Tensor& stdev,
                         const torch::Device& device) {
  auto x = split.images.index_select(0, index).permute({0, 3, 1, 2}).to(torch::kFloat);
  if (flip.defined()) x = torch::where(flip.view({-1, 1, 1, 1}), x.flip({3}), x);
  return ((x - mean) / stdev).contiguous().to(device);
}

struct Eval {
  double loss = 0, top1 = 0;
};

Eval evaluate(Classifier& model, const Split& split, int64_t batch, const torch::Tensor& mean,
              const torch::Tensor& stdev, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t n = split.labels.size(0);
  double loss = 0;
  int64_t correct = 0;
  for (int64_t begin = 0; begin < n; begin += batch) {
    const auto index = torch::arange(begin, std::min(n, begin + batch), torch::kLong);
    const auto labels = split.labels.index_select(0, index).to(device);
    const auto logits = model->forward(make_batch(split, index, {}, mean, stdev, device));
    loss +=
        torch::nn::functional::cross_entropy(
            logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
  }
  model->train();
  return {loss / std::max<int64_t>(1, n), static_cast<double>(correct) / std::max<int64_t>(1, n)};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : "\n") + s;
  return out;
}

std::string percent(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f %%", 100 * v);
  return buffer;
}

std::string fixed(double v, int digits) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, v);
  return buffer;
}

torch::Device device_of(const Config& config) {
  const auto name = config.get<std::string>("MODEL.DEVICE");
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("MODEL.DEVICE is " + name + " but no CUDA device is available",
                  config.source("MODEL.DEVICE"), "pass MODEL.DEVICE=cpu");
    return torch::Device(name);
  }
  return torch::Device(torch::kCPU);
}

// What a checkpoint must agree on with the run that resumes it.
safetensors::Metadata run_identity(const PretrainOptions& o,
                                   const std::vector<std::string>& classes, int64_t size) {
  return {{"classes", join(classes)},
          {"image_size", std::to_string(size)},
          {"epochs", std::to_string(o.epochs)},
          {"batch", std::to_string(o.batch)},
          {"lr", fixed(o.lr, 8)},
          {"warmup_epochs", fixed(o.warmup_epochs, 4)}};
}

// The options' own errors, before any file is looked at.
void check_options(const PretrainOptions& o) {
  if (o.epochs <= 0)
    throw Error("pretrain: --epochs is " + std::to_string(o.epochs), "--epochs",
                "give a positive number of epochs, e.g. --epochs 8");
  if (o.batch <= 1)
    throw Error("pretrain: --batch is " + std::to_string(o.batch) +
                    " (BatchNorm needs at least 2 images per batch)",
                "--batch", "give a batch of at least 2, e.g. --batch 128");
  if (!(o.lr > 0) || !std::isfinite(o.lr))
    throw Error("pretrain: --lr is " + std::to_string(o.lr), "--lr",
                "give a positive learning rate, e.g. --lr 0.1");
  if (o.warmup_epochs < 0 || o.image_size < 0 || o.momentum < 0 || o.weight_decay < 0 ||
      o.stop_after < 0)
    throw Error(
        "pretrain: warmup epochs, image size, momentum, weight decay and stop-after must "
        "not be negative");
  if (o.data_dir.empty())
    throw Error("pretrain: no data directory", "--data",
                "pass --data DIR holding DIR/train/<class>/*.jpg (`largedet synth --task "
                "classify --out DIR` writes one)");
  if (o.output_dir.empty())
    throw Error("pretrain: no output directory", "--output", "pass --output DIR");
}

// The data directory's splits: train/ with two or more classes, and val/ (optional) with the
// same ones.
struct Folders {
  std::string train_root;
  data::ImageFolder train, val;
  bool has_val = false;
};

Folders scan_folders(const PretrainOptions& o) {
  Folders f;
  f.train_root = (fs::path(o.data_dir) / "train").string();
  if (!fs::is_directory(o.data_dir))
    throw Error("pretrain: the data directory " + o.data_dir + " does not exist", "--data",
                "write one with `largedet synth --task classify --out " + o.data_dir +
                    "` or lay out DIR/train/<class>/*.jpg");
  if (!fs::is_directory(f.train_root))
    throw Error("pretrain: " + o.data_dir + " has no train/ folder", f.train_root,
                "lay out " + f.train_root + "/<class>/*.jpg (and val/<class>/* for validation)");
  f.train = data::scan_image_folder(f.train_root);
  if (f.train.classes.size() < 2)
    throw Error("pretrain: " + f.train_root +
                    " holds one class folder; a classifier needs two "
                    "or more",
                f.train_root, "add class folders");
  const std::string val_root = (fs::path(o.data_dir) / "val").string();
  f.has_val = fs::is_directory(val_root);
  if (f.has_val) {
    f.val = data::scan_image_folder(val_root);
    if (f.val.classes != f.train.classes)
      throw Error("pretrain: the val split's class folders differ from train's (" +
                      std::to_string(f.val.classes.size()) + " against " +
                      std::to_string(f.train.classes.size()) + ")",
                  val_root, "give val/ the same class folders as train/");
  } else {
    log::warning() << "pretrain: no " << val_root << ": no validation accuracy will be reported";
  }
  return f;
}

// The first readable training image's shorter side.
int64_t first_image_size(const Folders& folders) {
  for (const auto& sample : folders.train.samples) {
    try {
      const std::string bytes = read_file(sample.path);
      int w = 0, h = 0;
      data::read_image_size(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &w, &h,
                            sample.path);
      return std::min(w, h);
    } catch (const Error&) {
      continue;  // counted when the split is loaded
    }
  }
  throw Error("pretrain: no training image could be read", folders.train_root,
              "check that the files are JPEG or PNG images");
}

// The model's and the optimizer's state from a checkpoint that the same run (`identity`) wrote;
// the number of epochs it had finished.
int64_t restore_checkpoint(const std::string& path, const safetensors::Metadata& identity,
                           ClassifierImpl& model, torch::optim::SGD& optimizer,
                           const torch::Device& device) {
  auto contents = safetensors::load(path);
  for (const auto& [key, value] : identity) {
    const auto it = contents.metadata.find(key);
    if (it == contents.metadata.end() || it->second != value)
      throw Error("the checkpoint was written by a pretraining with another " + key, path,
                  "resume with the same data and options, or pass --force (without --resume) "
                  "to start over");
  }
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_parameters()) {
    const auto it = contents.tensors.find("model." + item.key());
    LARGEDET_CHECK(it != contents.tensors.end(), "pretrain checkpoint ", path, " lacks ",
                   item.key(), ": pass --force to start over");
    item.value().copy_(it->second);
    const auto m = contents.tensors.find("momentum." + item.key());
    if (m != contents.tensors.end()) {
      auto param_state = std::make_unique<torch::optim::SGDParamState>();
      param_state->momentum_buffer(m->second.to(device).clone());
      optimizer.state()[item.value().unsafeGetTensorImpl()] = std::move(param_state);
    }
  }
  for (const auto& item : model.named_buffers()) {
    const auto it = contents.tensors.find("model." + item.key());
    LARGEDET_CHECK(it != contents.tensors.end(), "pretrain checkpoint ", path, " lacks ",
                   item.key(), ": pass --force to start over");
    item.value().copy_(it->second);
  }
  const auto epoch = contents.metadata.find("epoch");
  if (epoch == contents.metadata.end())
    throw Error("the pretraining checkpoint records no epoch", path,
                "pass --force (without --resume) to start over");
  return std::stoll(epoch->second);
}

// Refuses to overwrite a finished pretraining without --force, or to restart an unfinished one
// without --resume or --force; whether a checkpoint is there.
bool check_earlier_run(const PretrainOptions& o, const std::string& weights_path,
                       const std::string& checkpoint_path) {
  if (fs::exists(weights_path) && !o.force)
    throw Error("the output directory already holds " + std::string(kWeightsName) +
                    " (a finished pretraining)",
                weights_path,
                "choose another --output, or pass --force to train again and "
                "overwrite it");
  const bool has_checkpoint = fs::exists(checkpoint_path);
  if (has_checkpoint && !o.resume && !o.force)
    throw Error("the output directory holds an unfinished pretraining (" +
                    std::string(kCheckpointName) + ")",
                checkpoint_path, "pass --resume to continue it, or --force to start over");
  return has_checkpoint;
}

// SGD's two groups: weight decay on conv and linear weights only, not on norms and biases.
std::vector<torch::optim::OptimizerParamGroup> sgd_groups(ClassifierImpl& model,
                                                          const PretrainOptions& o) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model.named_parameters()) {
    if (!p.value().requires_grad()) continue;
    (p.value().dim() > 1 ? decay : no_decay).push_back(p.value());
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decay, std::make_unique<torch::optim::SGDOptions>(
                 torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::SGDOptions>(
                                    torch::optim::SGDOptions(o.lr).momentum(o.momentum)));
  return groups;
}

// Per-channel values (the detector's pixel mean or std, checked there) as [1, 3, 1, 1].
torch::Tensor per_channel(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat).view({1, 3, 1, 1});
}

// What restore_checkpoint reads back: the model's parameters and buffers, SGD's momentum, the
// run's identity and the epochs finished.
void save_checkpoint(const std::string& path, safetensors::Metadata metadata, ClassifierImpl& model,
                     torch::optim::SGD& optimizer, int64_t epochs_done) {
  safetensors::TensorMap tensors;
  for (const auto& item : model.named_parameters()) {
    tensors["model." + item.key()] = item.value().detach();
    const auto it = optimizer.state().find(item.value().unsafeGetTensorImpl());
    if (it != optimizer.state().end()) {
      const auto& s = static_cast<const torch::optim::SGDParamState&>(*it->second);
      if (s.momentum_buffer().defined())
        tensors["momentum." + item.key()] = s.momentum_buffer().detach();
    }
  }
  for (const auto& item : model.named_buffers())
    tensors["model." + item.key()] = item.value().detach();
  metadata["epoch"] = std::to_string(epochs_done);
  safetensors::save(path, tensors, metadata);
}

// The body alone, by the detector's names; num_batches_tracked is left out as in torchvision's
// converted weights (the detector's BN starts its own count). The number of tensors written.
size_t save_body(const std::string& path, modeling::ResNetImpl& body,
                 const safetensors::Metadata& metadata) {
  safetensors::TensorMap tensors;
  for (const auto& item : body.named_parameters())
    tensors[kBodyPrefix + item.key()] = item.value().detach();
  for (const auto& item : body.named_buffers())
    if (!ends_with(item.key(), "num_batches_tracked"))
      tensors[kBodyPrefix + item.key()] = item.value().detach();
  safetensors::save(path, tensors, metadata);
  return tensors.size();
}

}  // namespace

modeling::ResNetOptions pretrain_resnet_options(const Config& config, std::string* why) {
  auto options = modeling::rcnn_options_from_config(config).backbone;
  std::string note;
  if (options.norm == "FrozenBN" || options.norm == "SyncBN") {
    note = "MODEL.RESNETS.NORM is " + options.norm + ": pretraining with BN (" +
           (options.norm == "SyncBN" ? "one process, where SyncBN is BN"
                                     : "frozen statistics cannot be learnt") +
           "); its weights and running statistics load into the detector's " + options.norm;
    options.norm = "BN";
  }
  if (options.freeze_at != 0) {
    note += std::string(note.empty() ? "" : "; ") + "MODEL.BACKBONE.FREEZE_AT " +
            std::to_string(options.freeze_at) + " ignored: pretraining trains every stage";
    options.freeze_at = 0;
  }
  options.returned_layers = {4};  // builds all four stages, returns the last
  if (why) *why = note;
  return options;
}

PretrainResult pretrain(const Config& config, const PretrainOptions& o) {
  check_options(o);
  const Folders folders = scan_folders(o);

  // One run per directory (docs/engine.md): taken before anything in it is read or removed.
  make_directories(o.output_dir, "the output directory");
  const RunLock lock(o.output_dir, "pretrain");
  const std::string weights_path = (fs::path(o.output_dir) / kWeightsName).string();
  const std::string checkpoint_path = (fs::path(o.output_dir) / kCheckpointName).string();
  const bool has_checkpoint = check_earlier_run(o, weights_path, checkpoint_path);

  configure_threads(config.get<int>("NUM_THREADS"));
  const auto seed = static_cast<uint64_t>(config.get<int64_t>("SEED"));
  const torch::Device device = device_of(config);

  const int64_t size = o.image_size > 0 ? o.image_size : first_image_size(folders);

  const auto t_load = Clock::now();
  Split train = load_split(folders.train, size, "train");
  Split val;
  if (folders.has_val) val = load_split(folders.val, size, "val");
  const int64_t n_train = train.labels.size(0);
  log::info() << "pretrain: " << n_train << " training and "
              << (folders.has_val ? val.labels.size(0) : 0) << " validation images of "
              << folders.train.classes.size() << " classes at " << size << "x" << size
              << " px from " << o.data_dir << " (decoded in "
              << fixed(std::chrono::duration<double>(Clock::now() - t_load).count(), 1) << " s)";
  if (n_train < 2)
    throw Error("pretrain: fewer than 2 readable training images", folders.train_root,
                "add training images");

  std::string norm_note;
  const auto resnet = pretrain_resnet_options(config, &norm_note);
  if (!norm_note.empty()) log::info() << "pretrain: " << norm_note;
  torch::manual_seed(seed);
  Classifier model(resnet, static_cast<int64_t>(folders.train.classes.size()));
  model->to(device);
  model->train();
  log::info() << "pretrain: ResNet-" << resnet.depth << " (stem " << resnet.stem_out_channels
              << ", width per group " << resnet.width_per_group << ", " << resnet.norm
              << ") with a " << folders.train.classes.size() << "-way linear classifier";

  torch::optim::SGD optimizer(sgd_groups(*model, o),
                              torch::optim::SGDOptions(o.lr).momentum(o.momentum));

  // Batches of one image are dropped (BatchNorm cannot normalise them).
  const int64_t iters_per_epoch = n_train / o.batch + (n_train % o.batch >= 2 ? 1 : 0);
  const int64_t total_iters = o.epochs * iters_per_epoch;
  const int64_t warmup_iters = std::min(
      total_iters / 2, static_cast<int64_t>(std::llround(o.warmup_epochs * iters_per_epoch)));
  auto lr_at = [&](int64_t it) {
    if (it < warmup_iters) return o.lr * static_cast<double>(it + 1) / warmup_iters;
    const double t = static_cast<double>(it - warmup_iters) /
                     static_cast<double>(std::max<int64_t>(1, total_iters - warmup_iters));
    return 0.5 * o.lr * (1 + std::cos(3.14159265358979323846 * t));
  };

  std::error_code ec;  // removals of files that may be absent
  const auto identity = run_identity(o, folders.train.classes, size);
  int64_t start_epoch = 0;
  if (has_checkpoint && o.resume) {
    start_epoch = restore_checkpoint(checkpoint_path, identity, *model, optimizer, device);
    MetricsWriter::drop_after(o.output_dir, start_epoch * iters_per_epoch);
    log::info() << "pretrain: resumed after epoch " << start_epoch << " of " << o.epochs << " from "
                << checkpoint_path;
  } else {
    // A fresh run (possibly --force): nothing of an earlier one is kept.
    for (const auto* name : {kCheckpointName, "metrics.jsonl"})
      fs::remove(fs::path(o.output_dir) / name, ec);
  }
  MetricsWriter metrics(o.output_dir, /*tensorboard=*/false);

  // The detector's normalisation, so that the weights see the pixels the detector will feed them.
  const modeling::TransformOptions normalise = modeling::rcnn_options_from_config(config).transform;
  const torch::Tensor mean = per_channel(normalise.pixel_mean);
  const torch::Tensor stdev = per_channel(normalise.pixel_std);

  PretrainResult result;
  result.classes = folders.train.classes;
  result.train_images = n_train;
  result.val_images = folders.has_val ? val.labels.size(0) : 0;
  result.skipped_images = train.skipped + val.skipped;
  result.weights_path = weights_path;
  log::info() << "pretrain: " << o.epochs << " epochs of " << iters_per_epoch
              << " iterations at batch " << o.batch << ", SGD momentum " << o.momentum
              << ", weight decay " << o.weight_decay << ", LR " << o.lr << " after " << warmup_iters
              << " warmup iterations, cosine to 0";

  double train_seconds = 0;
  int64_t trained_iters = 0;
  for (int64_t epoch = start_epoch; epoch < o.epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    const auto order = torch::tensor(
        data::seeded_permutation(n_train, data::mix_seed(seed, static_cast<uint64_t>(epoch))),
        torch::kLong);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    for (int64_t i = 0; i < iters_per_epoch; ++i) {
      const int64_t it = epoch * iters_per_epoch + i;
      const double lr = lr_at(it);
      for (auto& group : optimizer.param_groups())
        static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);
      const int64_t begin = i * o.batch, end = std::min(n_train, begin + o.batch);
      const auto index = order.slice(0, begin, end);
      std::vector<uint8_t> flips(static_cast<size_t>(end - begin));
      for (int64_t k = begin; k < end; ++k)
        flips[k - begin] = data::mix_seed(data::mix_seed(seed, 0xF11F), it * o.batch + k) & 1;
      const auto flip =
          torch::tensor(std::vector<int64_t>(flips.begin(), flips.end())).to(torch::kBool);
      const auto x = make_batch(train, index, flip, mean, stdev, device);
      const auto labels = train.labels.index_select(0, index).to(device);
      const auto logits = model->forward(x);
      const auto loss = torch::nn::functional::cross_entropy(logits, labels);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      const double loss_value = loss.item<double>();
      if (!std::isfinite(loss_value))
        throw Error("pretrain: the loss is " + std::to_string(loss_value) + " at epoch " +
                        std::to_string(epoch + 1) + ", iteration " + std::to_string(i + 1),
                    "--lr", "lower the learning rate (e.g. --lr " + fixed(o.lr / 4, 4) + ")");
      const int64_t b = end - begin;
      loss_sum += loss_value * b;
      correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
      seen += b;
      ++trained_iters;
      if (o.log_period > 0 && (i + 1) % o.log_period == 0 && i + 1 < iters_per_epoch) {
        const double elapsed =
            train_seconds + std::chrono::duration<double>(Clock::now() - t_epoch).count();
        const double eta = elapsed / trained_iters * (total_iters - it - 1);
        log::info() << "pretrain: epoch " << epoch + 1 << "/" << o.epochs << " iter " << i + 1
                    << "/" << iters_per_epoch << "  loss " << fixed(loss_sum / seen, 4) << "  acc "
                    << percent(static_cast<double>(correct) / seen) << "  lr " << fixed(lr, 5)
                    << "  "
                    << fixed(seen / std::chrono::duration<double>(Clock::now() - t_epoch).count(),
                             1)
                    << " img/s  eta " << format_duration(eta);
        metrics.write(it + 1, {{"epoch", epoch + static_cast<double>(i + 1) / iters_per_epoch},
                               {"total_loss", loss_sum / seen},
                               {"train_acc", static_cast<double>(correct) / seen},
                               {"lr", lr}});
      }
    }
    const double epoch_seconds = std::chrono::duration<double>(Clock::now() - t_epoch).count();
    train_seconds += epoch_seconds;
    result.train_loss = loss_sum / std::max<int64_t>(1, seen);
    result.train_accuracy = static_cast<double>(correct) / std::max<int64_t>(1, seen);
    std::map<std::string, double> scalars = {
        {"epoch", static_cast<double>(epoch + 1)},
        {"total_loss", result.train_loss},
        {"train_acc", result.train_accuracy},
        {"lr", lr_at((epoch + 1) * iters_per_epoch - 1)},
        {"epoch_seconds", epoch_seconds},
        {"images_per_second", seen / std::max(1e-9, epoch_seconds)}};
    std::string val_text;
    if (folders.has_val) {
      const auto e = evaluate(model, val, std::max<int64_t>(o.batch, 64), mean, stdev, device);
      result.val_top1 = e.top1;
      scalars["val_top1"] = e.top1;
      scalars["val_loss"] = e.loss;
      val_text = ", val top-1 " + percent(e.top1) + " (loss " + fixed(e.loss, 4) + ")";
    }
    ++result.epochs_run;
    const double eta = train_seconds / result.epochs_run * (o.epochs - epoch - 1);
    log::info() << "pretrain: epoch " << epoch + 1 << "/" << o.epochs << ": loss "
                << fixed(result.train_loss, 4) << ", train acc " << percent(result.train_accuracy)
                << val_text << "; " << format_duration(epoch_seconds) << " ("
                << fixed(seen / std::max(1e-9, epoch_seconds), 1) << " img/s), eta "
                << format_duration(eta);
    metrics.write((epoch + 1) * iters_per_epoch, scalars);

    if (epoch + 1 < o.epochs) {  // a checkpoint to resume from
      save_checkpoint(checkpoint_path, identity, *model, optimizer, epoch + 1);
      if (o.stop_after > 0 && result.epochs_run >= o.stop_after) {
        log::info() << "pretrain: stopped after epoch " << epoch + 1 << " of " << o.epochs
                    << " as asked; --resume continues from " << checkpoint_path;
        result.seconds_per_epoch = train_seconds / result.epochs_run;
        result.weights_path.clear();
        return result;
      }
    }
  }
  result.seconds_per_epoch = result.epochs_run > 0 ? train_seconds / result.epochs_run : 0;

  safetensors::Metadata metadata = {{"format", "largedet"},
                                    {"pretrain_classes", join(folders.train.classes)},
                                    {"pretrain_image_size", std::to_string(size)},
                                    {"pretrain_epochs", std::to_string(o.epochs)}};
  if (folders.has_val) metadata["pretrain_val_top1"] = fixed(result.val_top1, 4);
  const size_t tensors = save_body(weights_path, *model->body, metadata);
  fs::remove(checkpoint_path, ec);
  result.finished = true;
  log::info() << "pretrain: wrote " << tensors << " backbone tensors to " << weights_path
              << " (set MODEL.WEIGHTS: " << weights_path << ")"
              << (folders.has_val ? "; final val top-1 " + percent(result.val_top1)
                                  : std::string());
  return result;
}

}  // namespace largedet::engine
