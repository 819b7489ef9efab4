// largedet infer: run a trained detector on images and draw what it found (boxes, masks, class
// names, scores) into PNGs, one per input image.
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "command_registry.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/data/build.h"
#include "largedet/data/image.h"
#include "largedet/engine/runtime.h"
#include "validators.h"
#include "visualize/draw.h"

namespace {

namespace fs = std::filesystem;

struct InferArgs {
  std::string config, weights, input, output;
  std::vector<std::string> overrides;
  double score_threshold = 0.5;
};

std::vector<std::string> input_images(const std::string& input) {
  if (!fs::is_directory(input)) return {input};
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(input)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    if (entry.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png"))
      paths.push_back(entry.path().string());
  }
  std::sort(paths.begin(), paths.end());
  if (paths.empty())
    throw largedet::Error("no .jpg, .jpeg or .png files", input, "point --input at images");
  return paths;
}

// Class names by label: the configured test set's categories when it has one, else numbers.
std::vector<std::string> class_names(const largedet::Config& config) {
  if (config.get<std::string>("DATASETS.TEST_ANNOTATIONS").empty()) return {};
  return largedet::data::build_dataset(config, /*train=*/false)->class_names;
}

std::vector<largedet::tools::DrawnDetection> drawn(const largedet::modeling::Detections& d,
                                                   double threshold,
                                                   const std::vector<std::string>& names) {
  auto boxes = d.boxes.to(torch::kCPU, torch::kFloat).contiguous();
  auto scores = d.scores.to(torch::kCPU, torch::kFloat);
  auto labels = d.labels.to(torch::kCPU, torch::kLong);
  torch::Tensor masks;
  if (d.masks.defined()) masks = (d.masks.select(1, 0) > 0.5).to(torch::kCPU, torch::kUInt8);
  std::vector<largedet::tools::DrawnDetection> out;
  for (int64_t i = 0; i < scores.size(0); ++i) {
    const float score = scores[i].item<float>();
    if (score < threshold) continue;
    largedet::tools::DrawnDetection det;
    auto b = boxes[i];
    det.x1 = b[0].item<float>();
    det.y1 = b[1].item<float>();
    det.x2 = b[2].item<float>();
    det.y2 = b[3].item<float>();
    det.score = score;
    det.label = static_cast<int>(labels[i].item<int64_t>());
    det.name = det.label >= 1 && det.label <= static_cast<int>(names.size())
                   ? names[det.label - 1]
                   : "class " + std::to_string(det.label);
    if (masks.defined()) {
      auto m = masks[i].contiguous();
      det.mask.assign(m.data_ptr<uint8_t>(), m.data_ptr<uint8_t>() + m.numel());
    }
    out.push_back(std::move(det));
  }
  return out;
}

void run_infer(const InferArgs& args) {
  auto config = largedet::Config::from_file(args.config, args.overrides);
  const auto runtime = largedet::engine::setup_runtime(config);
  largedet::engine::resolve_recipe(config, runtime.world_size());
  auto model = largedet::engine::load_detector(config, args.weights, runtime.device);
  const auto names = class_names(config);
  fs::create_directories(args.output);
  torch::NoGradGuard no_grad;
  const auto paths = input_images(args.input);
  // a.jpg and a.png of one folder must not both become a.png: such stems keep their extension.
  std::map<std::string, int> stems;
  for (const auto& path : paths) ++stems[fs::path(path).stem().string()];
  for (const auto& path : paths) {
    const std::string bytes = largedet::read_file(path);
    const auto image = largedet::data::decode_image(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                    bytes.size(), 0, path);
    auto pixels = torch::from_blob(const_cast<uint8_t*>(image.rgb.data()),
                                   {image.height, image.width, 3}, torch::kUInt8)
                      .permute({2, 0, 1})
                      .to(runtime.device, torch::kFloat);
    const auto detections = model->detect(std::vector<torch::Tensor>{pixels});
    const auto shown = drawn(detections.at(0), args.score_threshold, names);
    const fs::path input(path);
    const bool shared = stems[input.stem().string()] > 1;
    const std::string out =
        args.output + "/" + (shared ? input.filename() : input.stem()).string() + ".png";
    largedet::tools::write_detections_png(out, image.rgb.data(), image.height, image.width, shown);
    std::cout << out << ": " << shown.size()
              << " detection(s) with score >= " << args.score_threshold << "\n";
  }
}

void setup_infer(CLI::App& cmd) {
  auto args = std::make_shared<InferArgs>();
  cmd.add_option("--config,-c", args->config, "recipe YAML the weights were trained with")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--weights,-w", args->weights, "checkpoint or model_final.safetensors")
      ->required()
      ->check(CLI::ExistingFile);
  cmd.add_option("--input,-i", args->input, "an image (JPEG, PNG) or a directory of them")
      ->required()
      ->check(CLI::ExistingPath);
  cmd.add_option("--output,-o", args->output,
                 "directory for the pictures (NAME.png each; NAME.EXT.png where two inputs share "
                 "a name)")
      ->required();
  cmd.add_option("--score-threshold", args->score_threshold,
                 "draw detections scoring at least this (0 to 1)")
      ->check(largedet::tools::finite_in(0, 1))
      ->capture_default_str();
  cmd.add_option("overrides", args->overrides, "KEY=VALUE overrides");
  cmd.callback([args] { run_infer(*args); });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("infer",
                          "Detect objects in images with trained weights and draw boxes, masks, "
                          "class names and scores into PNGs",
                          setup_infer);
