#include "train_fixture.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "largedet/data/synthetic.h"
#include "largedet/evaluation/coco_json.h"

namespace largedet::test {

std::string write_tiny_recipe(const std::string& dir, int images) {
  data::SynthOptions synth;
  synth.out_dir = dir + "/data";
  synth.images = images;
  synth.size = 96;
  synth.val_fraction = 0.25;
  synth.max_objects = 3;
  synth.seed = 7;
  data::write_synthetic_coco(synth);
  const std::string recipe = dir + "/tiny.yaml";
  std::ofstream(recipe) << "MODEL:\n"
                           "  BACKBONE: {FREEZE_AT: 0}\n"
                           "  RESNETS: {DEPTH: 18, NORM: SyncBN, STEM_OUT_CHANNELS: 8, "
                           "WIDTH_PER_GROUP: 8, RES2_OUT_CHANNELS: 8}\n"
                           "  FPN: {OUT_CHANNELS: 16}\n"
                           "  ANCHOR_GENERATOR: {SIZES: [[8], [16], [32], [64], [128]]}\n"
                           "  RPN: {PRE_NMS_TOPK_TRAIN: 200, POST_NMS_TOPK_TRAIN: 100, "
                           "PRE_NMS_TOPK_TEST: 100, POST_NMS_TOPK_TEST: 50, "
                           "BATCH_SIZE_PER_IMAGE: 32}\n"
                           "  ROI_HEADS: {NUM_CLASSES: 4, BATCH_SIZE_PER_IMAGE: 32}\n"
                           "  RETINANET: {NUM_CLASSES: 4}\n"
                           "  ROI_BOX_HEAD: {FC_DIM: 32}\n"
                           "INPUT: {MIN_SIZE_TRAIN: [64, 72], MAX_SIZE_TRAIN: 96, "
                           "MIN_SIZE_TEST: 72, MAX_SIZE_TEST: 96}\n"
                           "DATASETS:\n"
                           "  TRAIN_ANNOTATIONS: " +
                               dir + "/data/annotations/instances_train.json\n" +
                               "  TRAIN_IMAGES: " + dir + "/data/train\n" +
                               "  TEST_ANNOTATIONS: " + dir +
                               "/data/annotations/instances_val.json\n" + "  TEST_IMAGES: " + dir +
                               "/data/val\n" +
                               "DATALOADER: {NUM_WORKERS: 1}\n"
                               "NUM_THREADS: 1\n"
                               "SOLVER:\n"
                               "  OPTIMIZER: pmd_lamb\n"
                               "  IMS_PER_BATCH: 4\n"
                               "  IMS_PER_DEVICE: 2\n"
                               "  REFERENCE_BATCH: 4\n"
                               "  BASE_LR: 0.01\n"
                               "  MAX_ITER: 4\n"
                               "  STEPS: [3]\n"
                               "  WARMUP_ITERS: 2\n"
                               "  LAMB: {DECAY_PERIOD: 3}\n"
                               "  CHECKPOINT_PERIOD: 2\n"
                               "  LOG_PERIOD: 2\n";
  return recipe;
}

std::vector<std::string> write_openimages_csvs(const std::string& dir) {
  ::mkdir((dir + "/oi").c_str(), 0755);
  const auto train = evaluation::load_coco_json(dir + "/data/annotations/instances_train.json");
  {
    std::ofstream classes(dir + "/oi/classes.csv");
    for (const auto& c : train.categories) classes << "/m/" << c.id << "," << c.name << "\n";
  }
  for (const std::string split : {"train", "val"}) {
    const auto gt =
        evaluation::load_coco_json(dir + "/data/annotations/instances_" + split + ".json");
    std::ofstream csv(dir + "/oi/" + split + ".csv");
    csv << "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,"
           "IsGroupOf,IsDepiction,IsInside\n";
    for (const auto& a : gt.annotations) {
      const auto& image = gt.images[static_cast<size_t>(gt.image_index(a.image_id))];
      const std::string id = image.file_name.substr(0, image.file_name.find('.'));
      csv << id << ",synth,/m/" << a.category_id << ",1," << a.bbox[0] / image.width << ","
          << (a.bbox[0] + a.bbox[2]) / image.width << "," << a.bbox[1] / image.height << ","
          << (a.bbox[1] + a.bbox[3]) / image.height << ",0,0,0,0,0\n";
    }
  }
  return {"DATASETS.FORMAT=openimages", "DATASETS.TRAIN_ANNOTATIONS=" + dir + "/oi/train.csv",
          "DATASETS.TEST_ANNOTATIONS=" + dir + "/oi/val.csv",
          "DATASETS.CLASS_DESCRIPTIONS=" + dir + "/oi/classes.csv"};
}

Config tiny_config(const std::string& recipe, const std::vector<std::string>& overrides) {
  return Config::from_file(recipe, overrides);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int64_t overwrite_4k(const std::string& path, int64_t from_end) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(0, std::ios::end);
  const auto size = static_cast<int64_t>(file.tellg());
  file.seekp(size - from_end);
  file << std::string(4096, '\x5a');
  return size;
}

}  // namespace largedet::test
