// Accounting for bad input: a missing, corrupt or truncated image, an image of another size than
// annotated, an annotation naming an unknown image or category, a zero-sized, negative or NaN box,
// a box outside its image, a segmentation that cannot make a mask. By default each case is skipped
// (or clipped, or kept), the first of each kind is logged with its file and id, and every distinct
// case is counted for the run's summary. With DATALOADER.STRICT each case throws instead. Notes
// (kTurnedImage) are counted and logged the same way but are not bad input: never an error.
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
  // a polygon with fewer than 3 points or an odd number of coordinates, or an empty polygon list:
  // its mask would be empty, so the instance is dropped (detectron2 drops them too)
  kDegeneratePolygon,
  kWrongImageSize,  // the image file is not of the size the annotation file gives
  kTruncatedImage,  // the decoder recovered from missing or damaged data: kept, partly grey
  // Not bad input: an image whose annotated size is its file's turned by 90 degrees and whose EXIF
  // orientation explains it, turned as EXIF says. Counted and logged once, never an error.
  kTurnedImage,
  kCount
};

const char* bad_input_name(BadInput kind);
// Whether a kind is a note: accepted input worth a line in the summary, never an error.
bool is_note(BadInput kind);

// Thread-safe: loader workers report into one log.
class BadInputLog {
 public:
  explicit BadInputLog(bool strict = false) : strict_(strict) {}

  // Records one case. `where` identifies it (file and id) and is the key that makes a case count
  // once however often it is met (an image that fails every epoch is one bad image). Strict: throws
  // largedet::Error(what, where), except for notes. Otherwise logs the first case of each kind,
  // then stays quiet.
  void report(BadInput kind, const std::string& what, const std::string& where);

  bool strict() const { return strict_; }
  int64_t count(BadInput kind) const;
  int64_t total() const;  // the cases of bad input (notes are not)
  // One line: "bad input: 2 missing images, 1 invalid boxes" (or "bad input: none"), followed by
  // "; noted: 1 images turned by their EXIF orientation" when there are notes.
  std::string summary() const;

 private:
  bool strict_;
  mutable std::mutex mutex_;
  std::array<std::set<std::string>, static_cast<size_t>(BadInput::kCount)> seen_;
};

}  // namespace largedet::data
