#include "largedet/data/bad_input.h"

#include <sstream>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"

namespace largedet::data {

const char* bad_input_name(BadInput kind) {
  switch (kind) {
    case BadInput::kMissingImage:
      return "missing images";
    case BadInput::kCorruptImage:
      return "corrupt images";
    case BadInput::kUnknownImage:
      return "annotations of unknown images";
    case BadInput::kUnknownCategory:
      return "annotations of unknown categories";
    case BadInput::kInvalidBox:
      return "invalid boxes";
    case BadInput::kClippedBox:
      return "clipped boxes";
    case BadInput::kInvalidSegmentation:
      return "invalid segmentations";
    default:
      return "?";
  }
}

void BadInputLog::report(BadInput kind, const std::string& what, const std::string& where) {
  if (strict_) {
    throw Error(what, where, "fix the data, or set DATALOADER.STRICT false to skip such input");
  }
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& seen = seen_[static_cast<size_t>(kind)];
    first = seen.empty();
    seen.insert(where);
  }
  if (first) {
    const bool clipped = kind == BadInput::kClippedBox;
    log::warning() << what << " (" << where << ")" << (clipped ? "" : "; skipped") << ". Further "
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
  for (size_t k = 0; k < seen_.size(); ++k) n += count(static_cast<BadInput>(k));
  return n;
}

std::string BadInputLog::summary() const {
  std::ostringstream out;
  out << "bad input:";
  bool any = false;
  for (size_t k = 0; k < seen_.size(); ++k) {
    const int64_t n = count(static_cast<BadInput>(k));
    if (n == 0) continue;
    out << (any ? ", " : " ") << n << " " << bad_input_name(static_cast<BadInput>(k));
    any = true;
  }
  if (!any) out << " none";
  return out.str();
}

}  // namespace largedet::data
