// Datasets and loaders from the configuration (DATASETS.*, INPUT.*, DATALOADER.*,
// SOLVER.IMS_PER_DEVICE, MODEL.PIXEL_MEAN/STD, MODEL.MASK_ON, SEED): what the trainer and the
// evaluate command call.
#pragma once

#include <memory>

#include "largedet/core/config.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/data/loader.h"

namespace largedet::data {

// $DETECTRON2_DATASETS, or "datasets" when it is unset (detectron2's convention).
std::string datasets_root();
// Gives DATASETS.{TRAIN,TEST}_{ANNOTATIONS,IMAGES} the paths of the detectron2 dataset named in
// DATASETS.TRAIN / DATASETS.TEST (coco_2017_train, ...: detectron2's layout under
// datasets_root()), where the recipe did not set them itself. Several names, or a name LargeDet
// does not know, are errors that say what to do.
void resolve_dataset_names(Config& config);

// DATASETS.FORMAT coco: {TRAIN,TEST}_ANNOTATIONS is the instances JSON, {TRAIN,TEST}_IMAGES the
// image directory. openimages: {TRAIN,TEST}_ANNOTATIONS is the boxes CSV, CLASS_DESCRIPTIONS the
// class list, TRAIN_IMAGE_LABELS the optional image-level labels. Test sets keep every image.
std::shared_ptr<Dataset> build_dataset(const Config& config, bool train);
// The COCO reading options build_dataset uses for a split, for callers that parse the file
// themselves (the evaluation keeps the parse as its ground truth) and call coco_to_dataset.
CocoDatasetOptions coco_dataset_options(const Config& config, bool train);

// The largest image the recipe's resizes can make (short side min(MIN_SIZE, MAX_SIZE), long side
// MAX_SIZE; training and test) must fit INPUT.MAX_IMAGE_PIXELS: a short side of 60000 once asked
// the allocator for 115 GB. Throws naming the keys; the loaders and engine::check_recipe call it.
void check_input_sizes(const Config& config);

// Training: seeded shuffle sharded over ranks, aspect-ratio grouping, infinite iteration, random
// sizes and flips. `start_iter` skips the batches a resumed run already consumed, so a resumed
// run sees exactly the batches an uninterrupted one would.
std::unique_ptr<DataLoader> build_train_loader(const Config& config,
                                               std::shared_ptr<const Dataset> dataset, int rank,
                                               int world_size, int64_t start_iter = 0);
// Evaluation: every record once over all ranks (whole batches per rank, in order), no flip, test
// sizes.
std::unique_ptr<DataLoader> build_test_loader(const Config& config,
                                              std::shared_ptr<const Dataset> dataset, int rank,
                                              int world_size);

}  // namespace largedet::data
