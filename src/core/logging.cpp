#include "largedet/core/logging.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>

#include "largedet/core/error.h"

namespace largedet::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::atomic<int> g_rank{-1};
std::mutex g_mutex;

const char* level_name(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarning:
      return "WARN";
    case Level::kError:
      return "ERROR";
    default:
      return "";
  }
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }
void set_rank(int rank) { g_rank = rank; }

Level parse_level(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warning" || lower == "warn") return Level::kWarning;
  if (lower == "error") return Level::kError;
  if (lower == "off") return Level::kOff;
  throw Error("unknown log level '" + name + "'", "", "use debug, info, warning, error or off");
}

void write(Level level, const std::string& message) {
  if (level < g_level.load() || level == Level::kOff) return;
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  int millis = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm local{};
  localtime_r(&seconds, &local);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03d", local.tm_hour, local.tm_min,
                local.tm_sec, millis);
  std::string line = std::string("[") + stamp;
  if (int rank = g_rank.load(); rank >= 0) line += " rank " + std::to_string(rank);
  line += std::string(" ") + level_name(level) + "] " + message + "\n";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::cerr << line << std::flush;
}

Line::~Line() {
  if (level_ >= log::level()) write(level_, stream_.str());
}

}  // namespace largedet::log
