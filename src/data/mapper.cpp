#include "largedet/data/mapper.h"

#include <filesystem>
#include <fstream>

#include "largedet/core/error.h"

namespace largedet::data {

Sample map_encoded(const Record& record, const std::string& bytes, const MapperOptions& options,
                   uint64_t seed) {
  LARGEDET_CHECK(!options.min_sizes.empty(), "INPUT.MIN_SIZE_TRAIN is empty");
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  int in_w = 0, in_h = 0;
  read_image_size(data, bytes.size(), &in_w, &in_h, record.path);
  const uint64_t r1 = mix_seed(seed, 1), r2 = mix_seed(seed, 2);
  LARGEDET_CHECK(!options.min_size_range || options.min_sizes.size() == 2,
                 "range sampling needs INPUT.MIN_SIZE_TRAIN [min, max]");
  const int short_side =
      options.min_size_range
          ? options.min_sizes[0] +
                static_cast<int>(
                    r1 % static_cast<uint64_t>(options.min_sizes[1] - options.min_sizes[0] + 1))
          : options.min_sizes[r1 % options.min_sizes.size()];
  const bool flip = options.random_flip && (r2 >> 63) != 0;
  const auto [out_h, out_w] = resize_shortest_edge_size(in_h, in_w, short_side, options.max_size);

  Image decoded = decode_image(data, bytes.size(),
                               options.scaled_decode ? std::min(out_h, out_w) : 0, record.path);
  Sample sample;
  sample.image = std::move(decoded);  // resized and flipped by collate
  sample.height = out_h;
  sample.width = out_w;
  TransformParams params;
  // Record sizes, when known, are the coordinates of the boxes; they equal the file's.
  params.in_width = record.width > 0 ? record.width : in_w;
  params.in_height = record.height > 0 ? record.height : in_h;
  params.out_width = out_w;
  params.out_height = out_h;
  params.flip = flip;
  sample.target =
      transform_instances(record.instances, record.normalized_boxes, params, options.target);
  sample.image_id = record.image_id;
  sample.original_height = in_h;
  sample.original_width = in_w;
  sample.flipped = flip;
  return sample;
}

bool read_bytes(const std::string& path, std::string* bytes) {
  // A directory opens as a stream on Linux, with a meaningless size.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const std::streamoff size = in.tellg();
  if (size < 0) return false;
  bytes->resize(static_cast<size_t>(size));
  in.seekg(0);
  return static_cast<bool>(in.read(bytes->data(), size));
}

Sample map_record(const Record& record, const MapperOptions& options, uint64_t seed) {
  std::string bytes;
  if (!read_bytes(record.path, &bytes)) {
    throw Error("cannot read the image", record.path, "check DATASETS.*_IMAGES");
  }
  return map_encoded(record, bytes, options, seed);
}

}  // namespace largedet::data
