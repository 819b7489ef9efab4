// The per-image pipeline: read the file, decode (scaled JPEG decode when it helps), maybe crop,
// resize to a randomly chosen short side, maybe flip, and transform the instances alongside.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "largedet/data/batch.h"
#include "largedet/data/crop.h"
#include "largedet/data/records.h"
#include "largedet/data/seed.h"

namespace largedet::data {

struct MapperOptions {
  std::vector<int> min_sizes{800};  // INPUT.MIN_SIZE_TRAIN: one chosen per image at random
  // INPUT.MIN_SIZE_TRAIN_SAMPLING range: the short side is uniform in [min_sizes[0],
  // min_sizes[1]] instead of one of min_sizes.
  bool min_size_range = false;
  int max_size = 1333;        // INPUT.MAX_SIZE_TRAIN
  bool random_flip = true;    // INPUT.RANDOM_FLIP horizontal (p = 0.5)
  bool scaled_decode = true;  // use TurboJPEG's 1/2..1/8 decode when downsizing >= 2x (no crop)
  CropOptions crop;           // INPUT.CROP.*: a random crop before the resize
  TargetOptions target;
};

// Maps one record. `seed` alone decides the random choices (crop, size, flip), so a sample is the
// same whichever thread maps it. Bad input is reported to `bad` under the name `where`: an image of
// another size than the record's (checked on the header, before decoding) gives nullopt, a
// truncated image is kept; an image whose annotated size is its file's turned by its EXIF
// orientation is turned to match (noted). Throws largedet::Error naming the file when it cannot
// be decoded (the loader turns that into bad-input accounting), and what `bad` throws (strict).
std::optional<Sample> map_encoded(const Record& record, const std::string& bytes,
                                  const MapperOptions& options, uint64_t seed, BadInputLog& bad,
                                  const std::string& where);
// The same without a log: every case of bad input is an error, as with DATALOADER.STRICT (tests,
// benchmarks).
Sample map_encoded(const Record& record, const std::string& bytes, const MapperOptions& options,
                   uint64_t seed);
// The same from the file (map_encoded without a log).
Sample map_record(const Record& record, const MapperOptions& options, uint64_t seed);

// Reads a whole regular file; false when it is missing, not a regular file (a directory), or
// cannot be read.
bool read_bytes(const std::string& path, std::string* bytes);

}  // namespace largedet::data
