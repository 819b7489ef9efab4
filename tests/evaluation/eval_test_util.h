// Shared helpers of the evaluation tests: random COCO cases, a ground-truth JSON writer, temp
// directories and running the pycocotools oracle.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "largedet/evaluation/coco_json.h"
#include "largedet/evaluation/results.h"

namespace largedet::evaluation::testing {

struct RandomCase {
  CocoDataset gt;
  std::vector<Detection> bbox_results;  // boxes only
  std::vector<Detection> segm_results;  // compressed RLE masks only
};

// Random images (some empty), categories with non-contiguous ids, polygon objects of all sizes,
// crowd regions as uncompressed RLE, and detections: jittered true positives, duplicates, wrong
// classes, background false positives, tied scores, and images with more than 100 detections.
RandomCase make_random_case(uint32_t seed, int num_images);

// The ground truth as a COCO annotation JSON (polygons, uncompressed or compressed RLE).
std::string coco_dataset_to_json(const CocoDataset& dataset);

// A fresh directory under $TMPDIR (or /tmp).
std::string make_temp_dir();
// Removes a directory made by make_temp_dir (flat: files only). Not std::filesystem: libtorch.so
// exports an incompatible copy of it that the dynamic linker may pick.
void remove_temp_dir(const std::string& dir);
void write_text(const std::string& path, const std::string& text);

// The directory of the checked-in COCO vectors (tests/evaluation/data/coco_eval, written by
// tests/evaluation/make_coco_vectors.py).
std::string coco_vectors_dir();

// A seed that changes every run unless LARGEDET_TEST_SEED pins it.
uint32_t run_seed();

// `largedet ARGUMENTS` (stdout and stderr together) and its exit status; cli_built() says whether
// the binary exists, for tests to skip without it.
struct CliRun {
  int status = 0;
  std::string output;
};
CliRun run_cli(const std::string& arguments);
bool cli_built();

}  // namespace largedet::evaluation::testing
