#include "largedet/data/build.h"

#include "largedet/core/error.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/data/openimages_dataset.h"

namespace largedet::data {

namespace {

std::string split_of(bool train) { return train ? "TRAIN" : "TEST"; }

bool filter_empty(const Config& config, bool train) {
  return train && config.get<bool>("DATASETS.FILTER_EMPTY_ANNOTATIONS");
}

}  // namespace

CocoDatasetOptions coco_dataset_options(const Config& config, bool train) {
  CocoDatasetOptions o;
  o.image_root = config.get<std::string>("DATASETS." + split_of(train) + "_IMAGES");
  o.filter_empty = filter_empty(config, train);
  o.load_segmentation = config.get<bool>("MODEL.MASK_ON") || !train;
  o.strict = config.get<bool>("DATALOADER.STRICT");
  return o;
}

std::shared_ptr<Dataset> build_dataset(const Config& config, bool train) {
  const std::string split = split_of(train);
  const std::string format = config.get<std::string>("DATASETS.FORMAT");
  const std::string annotations = config.get<std::string>("DATASETS." + split + "_ANNOTATIONS");
  if (annotations.empty()) {
    throw Error("no annotation file configured", "DATASETS." + split + "_ANNOTATIONS",
                "set it, e.g. to the instances JSON that `largedet synth` writes");
  }
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

namespace {

LoaderOptions loader_options(const Config& config, bool train) {
  LoaderOptions o;
  o.num_workers = config.get<int>("DATALOADER.NUM_WORKERS");
  o.prefetch = config.get<int>("DATALOADER.PREFETCH");
  o.seed = static_cast<uint64_t>(config.get<int64_t>("SEED"));
  if (train) {
    o.mapper.min_sizes = config.get<std::vector<int>>("INPUT.MIN_SIZE_TRAIN");
    o.mapper.max_size = config.get<int>("INPUT.MAX_SIZE_TRAIN");
    const std::string flip = config.get<std::string>("INPUT.RANDOM_FLIP");
    LARGEDET_CHECK(flip == "horizontal" || flip == "none", "INPUT.RANDOM_FLIP is \"", flip,
                   "\"; use horizontal or none");
    o.mapper.random_flip = flip == "horizontal";
  } else {
    o.mapper.min_sizes = {config.get<int>("INPUT.MIN_SIZE_TEST")};
    o.mapper.max_size = config.get<int>("INPUT.MAX_SIZE_TEST");
    o.mapper.random_flip = false;
  }
  o.mapper.target.masks = train && config.get<bool>("MODEL.MASK_ON");
  o.collate.size_divisibility = config.get<int>("INPUT.SIZE_DIVISIBILITY");
  const auto mean = config.get<std::vector<double>>("MODEL.PIXEL_MEAN");
  const auto std = config.get<std::vector<double>>("MODEL.PIXEL_STD");
  LARGEDET_CHECK(mean.size() == 3 && std.size() == 3,
                 "MODEL.PIXEL_MEAN and MODEL.PIXEL_STD need 3 values (RGB)");
  for (int c = 0; c < 3; ++c) {
    o.collate.pixel_mean[c] = static_cast<float>(mean[c]);
    o.collate.pixel_std[c] = static_cast<float>(std[c]);
  }
  o.collate.pin_memory = config.get<bool>("DATALOADER.PIN_MEMORY");
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
  BatchSampler sampler(
      DistributedSampler(static_cast<int64_t>(dataset->size()), rank, world_size, true, seed),
      *dataset, so);
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
  BatchSampler sampler(
      DistributedSampler(static_cast<int64_t>(dataset->size()), rank, world_size, false, 0, false),
      *dataset, so);
  return std::make_unique<DataLoader>(std::move(dataset), std::move(sampler),
                                      loader_options(config, false));
}

}  // namespace largedet::data
