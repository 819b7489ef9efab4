#include "largedet/data/bad_input.h"

#include <iterator>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"

namespace largedet::data {

namespace {

struct KindInfo {
  const char* name;    // plural, for the summary
  const char* action;  // what becomes of such a case by default, for the log
};

const KindInfo& info(BadInput kind) {
  static const KindInfo kInfo[] = {
      {"missing images", "skipped"},
      {"corrupt images", "skipped"},
      {"annotations of unknown images", "skipped"},
      {"annotations of unknown categories", "skipped"},
      {"invalid boxes", "skipped"},
      {"clipped boxes", "clipped"},
      {"invalid segmentations", "skipped"},
      {"degenerate polygons", "instance skipped"},
      {"images of another size than annotated", "skipped"},
      {"truncated or damaged images", "kept"},
      {"images turned by their EXIF orientation", "turned"},
  };
  static_assert(std::size(kInfo) == static_cast<size_t>(BadInput::kCount));
  return kInfo[static_cast<size_t>(kind)];
}

}  // namespace

const char* bad_input_name(BadInput kind) { return info(kind).name; }

bool is_note(BadInput kind) { return kind == BadInput::kTurnedImage; }

void BadInputLog::report(BadInput kind, const std::string& what, const std::string& where) {
  const bool note = is_note(kind);
  if (strict_ && !note) {
    throw Error(what, where, "fix the data, or set DATALOADER.STRICT false to skip such input");
  }
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& seen = seen_[static_cast<size_t>(kind)];
    first = seen.empty();
    seen.insert(where);
  }
  if (!first) return;
  if (note) {
    log::info() << what << " (" << where << "). Further " << bad_input_name(kind)
                << " are only counted";
  } else {
    log::warning() << what << " (" << where << "); " << info(kind).action << ". Further "
                   << bad_input_name(kind)
                   << " are only counted (DATALOADER.STRICT makes them errors)";
  }
}

int64_t BadInputLog::count(BadInput kind) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(seen_[static_cast<size_t>(kind)].size());
}

int64_t BadInputLog::total() const {
  int64_t n = 0;
  for (size_t k = 0; k < seen_.size(); ++k) {
    if (!is_note(static_cast<BadInput>(k))) n += count(static_cast<BadInput>(k));
  }
  return n;
}

std::string BadInputLog::summary() const {
  // The counts of the kinds that are (or are not) notes, "" when all are 0.
  auto counts = [&](bool notes) {
    std::ostringstream out;
    for (size_t k = 0; k < seen_.size(); ++k) {
      const auto kind = static_cast<BadInput>(k);
      const int64_t n = count(kind);
      if (n == 0 || is_note(kind) != notes) continue;
      out << (out.tellp() > 0 ? ", " : "") << n << " " << bad_input_name(kind);
    }
    return out.str();
  };
  const std::string bad = counts(false), notes = counts(true);
  return "bad input: " + (bad.empty() ? "none" : bad) + (notes.empty() ? "" : "; noted: " + notes);
}

}  // namespace largedet::data
