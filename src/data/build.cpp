#include "largedet/data/build.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/data/openimages_dataset.h"

namespace largedet::data {

namespace {

std::string split_of(bool train) { return train ? "TRAIN" : "TEST"; }

bool filter_empty(const Config& config, bool train) {
  return train && config.get<bool>("DATALOADER.FILTER_EMPTY_ANNOTATIONS");
}

struct BuiltinDataset {
  std::string annotations, images;  // relative to the datasets root
};

// detectron2's builtin COCO instance splits (data/datasets/builtin.py) and their layout.
const std::map<std::string, BuiltinDataset>& builtin_datasets() {
  static const std::map<std::string, BuiltinDataset> datasets = {
      {"coco_2014_train", {"coco/annotations/instances_train2014.json", "coco/train2014"}},
      {"coco_2014_val", {"coco/annotations/instances_val2014.json", "coco/val2014"}},
      {"coco_2014_minival", {"coco/annotations/instances_minival2014.json", "coco/val2014"}},
      {"coco_2014_valminusminival",
       {"coco/annotations/instances_valminusminival2014.json", "coco/val2014"}},
      {"coco_2017_train", {"coco/annotations/instances_train2017.json", "coco/train2017"}},
      {"coco_2017_val", {"coco/annotations/instances_val2017.json", "coco/val2017"}},
      {"coco_2017_val_100", {"coco/annotations/instances_val2017_100.json", "coco/val2017"}},
  };
  return datasets;
}

}  // namespace

std::string datasets_root() {
  const char* env = std::getenv("DETECTRON2_DATASETS");
  return env && *env ? env : "datasets";
}

void resolve_dataset_names(Config& config) {
  for (const std::string split : {"TRAIN", "TEST"}) {
    const std::string names_key = "DATASETS." + split;
    const auto names = config.get<std::vector<std::string>>(names_key);
    if (names.empty()) continue;
    if (names.size() > 1)
      throw Error(names_key + " names " + std::to_string(names.size()) +
                      " datasets; LargeDet reads one per split",
                  config.source(names_key),
                  "merge them into one COCO file and set DATASETS." + split + "_ANNOTATIONS");
    auto it = builtin_datasets().find(names[0]);
    if (it == builtin_datasets().end()) {
      std::string known;
      for (const auto& [name, d] : builtin_datasets()) known += (known.empty() ? "" : ", ") + name;
      throw Error("unknown dataset name '" + names[0] + "'",
                  names_key + " (" + config.source(names_key) + ")",
                  "use one of " + known + ", or set DATASETS." + split + "_ANNOTATIONS and " +
                      split + "_IMAGES");
    }
    const std::string root = datasets_root();
    const std::string source =
        names_key + " '" + names[0] + "' under $DETECTRON2_DATASETS (" + root + ")";
    // Explicit paths win over the name.
    if (config.get<std::string>("DATASETS." + split + "_ANNOTATIONS").empty())
      config.set("DATASETS." + split + "_ANNOTATIONS", root + "/" + it->second.annotations, source);
    if (config.get<std::string>("DATASETS." + split + "_IMAGES").empty())
      config.set("DATASETS." + split + "_IMAGES", root + "/" + it->second.images, source);
  }
}

CocoDatasetOptions coco_dataset_options(const Config& config, bool train) {
  CocoDatasetOptions o;
  o.image_root = config.get<std::string>("DATASETS." + split_of(train) + "_IMAGES");
  o.filter_empty = filter_empty(config, train);
  o.load_segmentation = config.get<bool>("MODEL.MASK_ON") || !train;
  o.strict = config.get<bool>("DATALOADER.STRICT");
  o.max_image_pixels = config.get<int64_t>("INPUT.MAX_IMAGE_PIXELS");
  return o;
}

std::shared_ptr<Dataset> build_dataset(const Config& config, bool train) {
  const std::string split = split_of(train);
  const std::string format = config.get<std::string>("DATASETS.FORMAT");
  const std::string annotations = config.get<std::string>("DATASETS." + split + "_ANNOTATIONS");
  const std::string key = "DATASETS." + split + "_ANNOTATIONS";
  if (annotations.empty()) {
    throw Error("no " + std::string(train ? "training" : "test") + " set configured", key,
                "set DATASETS." + split + " to a detectron2 name (coco_2017_" +
                    (train ? "train" : "val") + ") or " + key +
                    " to an instances JSON, e.g. the one `largedet synth` writes");
  }
  if (!std::filesystem::is_regular_file(annotations))
    throw Error("no annotation file at " + annotations, key + " (" + config.source(key) + ")",
                "download the dataset there, point $DETECTRON2_DATASETS at the folder holding "
                "coco/, or set " +
                    key);
  if (format == "coco") {
    return std::make_shared<Dataset>(
        load_coco_dataset(annotations, coco_dataset_options(config, train)));
  }
  if (format == "openimages") {
    OpenImagesOptions o;
    o.boxes_csv = annotations;
    o.class_descriptions_csv = config.get<std::string>("DATASETS.CLASS_DESCRIPTIONS");
    if (train) o.image_labels_csv = config.get<std::string>("DATASETS.TRAIN_IMAGE_LABELS");
    o.image_root = config.get<std::string>("DATASETS." + split + "_IMAGES");
    o.filter_empty = filter_empty(config, train);
    o.strict = config.get<bool>("DATALOADER.STRICT");
    return std::make_shared<Dataset>(load_openimages_dataset(o));
  }
  throw Error("unknown dataset format \"" + format + "\"", "DATASETS.FORMAT",
              "use coco or openimages");
}

void check_input_sizes(const Config& config) {
  const int64_t limit = config.get<int64_t>("INPUT.MAX_IMAGE_PIXELS");
  auto check = [&](const std::string& min_key, int64_t min_size, const std::string& max_key) {
    const int64_t max_size = config.get<int>(max_key);
    const int64_t pixels = std::min(min_size, max_size) * max_size;
    if (pixels > limit) {
      throw Error(detail::concat(min_key, " ", min_size, " with ", max_key, " ", max_size,
                                 " resizes an image to as much as ", std::min(min_size, max_size),
                                 " x ", max_size, " = ", pixels,
                                 " pixels, more than INPUT.MAX_IMAGE_PIXELS (", limit, ")"),
                  config.source(min_key),
                  "detectron2's COCO recipes use short sides of 640-800 and 1333 at most; raise "
                  "INPUT.MAX_IMAGE_PIXELS only for images that large");
    }
  };
  const auto train = config.get<std::vector<int>>("INPUT.MIN_SIZE_TRAIN");
  if (!train.empty())
    check("INPUT.MIN_SIZE_TRAIN", *std::max_element(train.begin(), train.end()),
          "INPUT.MAX_SIZE_TRAIN");
  check("INPUT.MIN_SIZE_TEST", config.get<int>("INPUT.MIN_SIZE_TEST"), "INPUT.MAX_SIZE_TEST");
}

namespace {

CropOptions crop_options(const Config& config) {
  CropOptions crop;
  crop.enabled = config.get<bool>("INPUT.CROP.ENABLED");
  if (!crop.enabled) return crop;
  crop.type = parse_crop_type(config.get<std::string>("INPUT.CROP.TYPE"));
  const auto size = config.get<std::vector<double>>("INPUT.CROP.SIZE");
  if (size.size() != 2)
    throw Error("INPUT.CROP.SIZE needs two numbers",
                "INPUT.CROP.SIZE (" + config.source("INPUT.CROP.SIZE") + ")",
                "write e.g. [0.9, 0.9] (height, width)");
  crop.size = {size[0], size[1]};
  try {
    check_crop_options(crop);
  } catch (const Error& e) {
    throw Error(e.message(), "INPUT.CROP.SIZE (" + config.source("INPUT.CROP.SIZE") + ")",
                e.hint());
  }
  return crop;
}

LoaderOptions loader_options(const Config& config, bool train) {
  check_input_sizes(config);
  LoaderOptions o;
  o.num_workers = config.get<int>("DATALOADER.NUM_WORKERS");
  o.prefetch = config.get<int>("DATALOADER.PREFETCH");
  o.seed = static_cast<uint64_t>(config.get<int64_t>("SEED"));
  if (train) {
    o.mapper.min_sizes = config.get<std::vector<int>>("INPUT.MIN_SIZE_TRAIN");
    o.mapper.min_size_range = config.get<std::string>("INPUT.MIN_SIZE_TRAIN_SAMPLING") == "range";
    if (o.mapper.min_size_range &&
        (o.mapper.min_sizes.size() != 2 || o.mapper.min_sizes[0] > o.mapper.min_sizes[1]))
      throw Error("INPUT.MIN_SIZE_TRAIN_SAMPLING range needs INPUT.MIN_SIZE_TRAIN [min, max]",
                  config.source("INPUT.MIN_SIZE_TRAIN"), "write e.g. (640, 800)");
    o.mapper.max_size = config.get<int>("INPUT.MAX_SIZE_TRAIN");
    o.mapper.random_flip = config.get<std::string>("INPUT.RANDOM_FLIP") == "horizontal";
    o.mapper.crop = crop_options(config);
  } else {
    o.mapper.min_sizes = {config.get<int>("INPUT.MIN_SIZE_TEST")};
    o.mapper.max_size = config.get<int>("INPUT.MAX_SIZE_TEST");
    o.mapper.random_flip = false;
  }
  o.mapper.target.masks = train && config.get<bool>("MODEL.MASK_ON");
  // Page-locked memory only helps a copy to a GPU, and costs the host where there is none.
  o.collate.pin_memory = config.get<bool>("DATALOADER.PIN_MEMORY") &&
                         config.get<std::string>("MODEL.DEVICE") == "cuda";
  return o;
}

}  // namespace

std::unique_ptr<DataLoader> build_train_loader(const Config& config,
                                               std::shared_ptr<const Dataset> dataset, int rank,
                                               int world_size, int64_t start_iter) {
  BatchSamplerOptions so;
  so.batch_size = config.get<int>("SOLVER.IMS_PER_DEVICE");
  so.aspect_grouping = config.get<bool>("DATALOADER.ASPECT_RATIO_GROUPING");
  so.infinite = true;
  const auto seed = static_cast<uint64_t>(config.get<int64_t>("SEED"));
  DistributedSampler distributed(static_cast<int64_t>(dataset->size()), rank, world_size, true,
                                 seed);
  if (config.get<std::string>("DATALOADER.SAMPLER_TRAIN") == "RepeatFactorTrainingSampler") {
    std::vector<double> factors = repeat_factors_from_category_frequency(
        *dataset, config.get<double>("DATALOADER.REPEAT_THRESHOLD"),
        config.get<bool>("DATALOADER.REPEAT_SQRT"));
    const double images = std::accumulate(factors.begin(), factors.end(), 0.0);
    if (rank == 0) {
      log::info() << "RepeatFactorTrainingSampler: "
                  << std::count_if(factors.begin(), factors.end(), [](double r) { return r > 1; })
                  << " of " << factors.size() << " images repeated (factors up to "
                  << *std::max_element(factors.begin(), factors.end()) << "), about "
                  << static_cast<int64_t>(images + 0.5) << " images an epoch";
    }
    distributed.with_repeat_factors(std::move(factors));
  }
  BatchSampler sampler(std::move(distributed), *dataset, so);
  for (int64_t i = 0; i < start_iter; ++i) sampler.next();
  return std::make_unique<DataLoader>(std::move(dataset), std::move(sampler),
                                      loader_options(config, true));
}

std::unique_ptr<DataLoader> build_test_loader(const Config& config,
                                              std::shared_ptr<const Dataset> dataset, int rank,
                                              int world_size) {
  BatchSamplerOptions so;
  so.batch_size = config.get<int>("SOLVER.IMS_PER_DEVICE");
  so.aspect_grouping = false;
  BatchSampler sampler(DistributedSampler::for_inference(static_cast<int64_t>(dataset->size()),
                                                         rank, world_size, so.batch_size),
                       *dataset, so);
  return std::make_unique<DataLoader>(std::move(dataset), std::move(sampler),
                                      loader_options(config, false));
}

}  // namespace largedet::data
