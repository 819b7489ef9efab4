// Accounting for bad input: a missing or corrupt image, an annotation naming an unknown image or
// category, a zero-sized, negative or NaN box, a box outside its image. By default each case is
// skipped (or clipped), the first of each kind is logged with its file and id, and every distinct
// case is counted for the run's summary. With DATALOADER.STRICT each case throws instead.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

namespace largedet::data {

enum class BadInput {
  kMissingImage,     // the image file cannot be read
  kCorruptImage,     // the image file cannot be decoded
  kUnknownImage,     // an annotation's image_id is not among the images
  kUnknownCategory,  // an annotation's category is not among the categories
  kInvalidBox,       // no box, zero or negative size, NaN/inf, or nothing left after clipping
  kClippedBox,       // a box partly outside its image, clipped to it
  // a polygon with NaN/inf or far-out coordinates (beyond one image size outside), or an RLE whose
  // size is not its image's: rasterising either could ask for gigabytes
  kInvalidSegmentation,
  kCount
};

const char* bad_input_name(BadInput kind);

// Thread-safe: loader workers report into one log.
class BadInputLog {
 public:
  explicit BadInputLog(bool strict = false) : strict_(strict) {}

  // Records one case. `where` identifies it (file and id) and is the key that makes a case count
  // once however often it is met (an image that fails every epoch is one bad image). Strict: throws
  // largedet::Error(what, where). Otherwise logs the first case of each kind, then stays quiet.
  void report(BadInput kind, const std::string& what, const std::string& where);

  bool strict() const { return strict_; }
  int64_t count(BadInput kind) const;
  int64_t total() const;
  // One line: "bad input: 2 missing images, 1 invalid boxes" (or "bad input: none").
  std::string summary() const;

 private:
  bool strict_;
  mutable std::mutex mutex_;
  std::array<std::set<std::string>, static_cast<size_t>(BadInput::kCount)> seen_;
};

}  // namespace largedet::data
