// A tiny synthetic dataset and detector recipe that train in seconds on one core, shared by the
// trainer tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/shell.h"
#include "largedet/core/config.h"
#include "temp_dir.h"

namespace largedet::test {

// Writes `images` synthetic images (96 px long side) under dir/data and a recipe dir/tiny.yaml:
// ResNet-18 at 1/8 width with SyncBN, FPN 16, PMD-LAMB, batch 4 in micro-batches of 2,
// multistep schedule (independent of MAX_ITER), no evaluation unless asked.
std::string write_tiny_recipe(const std::string& dir, int images = 24);
// The same synthetic data as OpenImages CSVs under dir/oi (classes.csv, train.csv, val.csv; image
// ids are the file stems); returns the overrides that select them.
std::vector<std::string> write_openimages_csvs(const std::string& dir);
Config tiny_config(const std::string& recipe, const std::vector<std::string>& overrides = {});

std::string read_text(const std::string& path);
// What issue 18 did to a checkpoint: 4 KB overwritten `from_end` bytes before the end of the file,
// its size unchanged. Returns the file's size.
int64_t overwrite_4k(const std::string& path, int64_t from_end);

}  // namespace largedet::test
