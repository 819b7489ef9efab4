#include "largedet/data/mapper.h"

#include <filesystem>
#include <fstream>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::data {

namespace {

// The frame the record's boxes and polygons are in: the file's, or the file's turned upright by
// its EXIF orientation when the annotated size is the turned one (annotation tools that show
// images upright write that size). `orientation` is 1 when the pixels stay as decoded.
struct Frame {
  int width = 0, height = 0;
  int orientation = 1;
};

// The record's frame from the file's header, reporting a mismatch (nullopt: skip the record).
std::optional<Frame> annotated_frame(const Record& record, const uint8_t* data, size_t size,
                                     BadInputLog& bad, const std::string& where) {
  Frame file;
  read_image_size(data, size, &file.width, &file.height, record.path);
  // Sizes <= 0 are unknown before decoding (OpenImages).
  if ((record.width <= 0 || record.width == file.width) &&
      (record.height <= 0 || record.height == file.height)) {
    return file;
  }
  if (record.width == file.height && record.height == file.width) {
    const int orientation = read_exif_orientation(data, size);
    if (exif_orientation_turns(orientation)) {
      bad.report(BadInput::kTurnedImage,
                 detail::concat("the image is ", file.width, "x", file.height, ", annotated as ",
                                record.width, "x", record.height, " as its EXIF orientation ",
                                orientation, " turns it"),
                 where);
      return Frame{record.width, record.height, orientation};
    }
  }
  bad.report(BadInput::kWrongImageSize,
             detail::concat("the image is ", file.width, "x", file.height,
                            " but the annotation file says ", record.width, "x", record.height),
             where);
  return std::nullopt;
}

}  // namespace

std::optional<Sample> map_encoded(const Record& record, const std::string& bytes,
                                  const MapperOptions& options, uint64_t seed, BadInputLog& bad,
                                  const std::string& where) {
  LARGEDET_CHECK(!options.min_sizes.empty(), "INPUT.MIN_SIZE_TRAIN is empty");
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  // From the header, so that a hostile size is refused before anything is allocated for it.
  const std::optional<Frame> frame = annotated_frame(record, data, bytes.size(), bad, where);
  if (!frame) return std::nullopt;
  const uint64_t r1 = mix_seed(seed, 1), r2 = mix_seed(seed, 2);
  LARGEDET_CHECK(!options.min_size_range || options.min_sizes.size() == 2,
                 "range sampling needs INPUT.MIN_SIZE_TRAIN [min, max]");
  const auto short_side = static_cast<int>(
      options.min_size_range
          ? uniform_int(r1, options.min_sizes[0], options.min_sizes[1])
          : options.min_sizes[uniform_int(r1, 0, int64_t(options.min_sizes.size()) - 1)]);
  const bool flip = options.random_flip && (r2 >> 63) != 0;
  TransformParams params;
  params.in_width = frame->width;
  params.in_height = frame->height;
  params.flip = flip;
  // detectron2 crops before it resizes: the size follows from the crop's.
  if (options.crop.enabled)
    params.crop = random_crop_window(frame->height, frame->width, options.crop, mix_seed(seed, 3));
  const auto [out_h, out_w] = resize_shortest_edge_size(
      params.crop ? params.crop->height : frame->height,
      params.crop ? params.crop->width : frame->width, short_side, options.max_size);
  params.out_width = out_w;
  params.out_height = out_h;

  // A crop needs the full decode: its window is in the file's pixels.
  const int decode_hint = options.scaled_decode && !params.crop ? std::min(out_h, out_w) : 0;
  Image decoded = decode_image(data, bytes.size(), decode_hint, record.path);
  if (!decoded.warning.empty()) bad.report(BadInput::kTruncatedImage, decoded.warning, where);
  if (frame->orientation != 1) decoded = turn_by_exif_orientation(decoded, frame->orientation);
  if (params.crop) decoded = crop_image(decoded, *params.crop);
  Sample sample;
  sample.image = std::move(decoded);  // resized and flipped by collate
  sample.height = out_h;
  sample.width = out_w;
  sample.target =
      transform_instances(record.instances, record.normalized_boxes, params, options.target);
  sample.image_id = record.image_id;
  sample.original_height = frame->height;
  sample.original_width = frame->width;
  sample.flipped = flip;
  return sample;
}

Sample map_encoded(const Record& record, const std::string& bytes, const MapperOptions& options,
                   uint64_t seed) {
  BadInputLog strict(true);
  return map_encoded(record, bytes, options, seed, strict, record.path).value();
}

bool read_bytes(const std::string& path, std::string* bytes) {
  // A directory opens as a stream on Linux, with a meaningless size.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  if (static_cast<int64_t>(std::filesystem::file_size(path, ec)) > max_input_bytes()) return false;
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
