// A small logger on iostreams (spdlog/fmt clash with the fmt that LibTorch bundles).
// Lines look like `[12:03:04.512 rank 1 INFO] message`; the rank prefix appears once a rank is set.
#pragma once

#include <sstream>
#include <string>

namespace largedet::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void set_level(Level level);
Level level();
// Parses debug|info|warning|error|off (any case); throws largedet::Error otherwise.
Level parse_level(const std::string& name);
// -1 (the default) prints no rank.
void set_rank(int rank);
// Writes one complete line to stderr; safe to call from several threads.
void write(Level level, const std::string& message);

// Collects one line and writes it when destroyed: `log::Line(Level::kInfo) << "x=" << x;`
class Line {
 public:
  explicit Line(Level level) : level_(level) {}
  ~Line();
  template <typename T>
  Line& operator<<(const T& value) {
    if (level_ >= log::level()) stream_ << value;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream stream_;
};

inline Line debug() { return Line(Level::kDebug); }
inline Line info() { return Line(Level::kInfo); }
inline Line warning() { return Line(Level::kWarning); }
inline Line error() { return Line(Level::kError); }

}  // namespace largedet::log
