#include "largedet/engine/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

namespace largedet::engine {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds)) return "?";
  const auto s = static_cast<long long>(std::llround(std::max(0.0, seconds)));
  char buffer[32];
  if (s < 60)
    std::snprintf(buffer, sizeof(buffer), "%llds", s);
  else if (s < 3600)
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", s / 60, s % 60);
  else
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  return buffer;
}

namespace {

// Under `largedet launch` stderr is the launcher's pipe; the launcher says whether its own stderr
// is a terminal, and forwards the bar's redraws (distributed/launcher.cpp).
bool stderr_is_terminal() {
  if (isatty(STDERR_FILENO) == 1) return true;
  const char* launched = std::getenv("LARGEDET_STDERR_IS_TERMINAL");
  return launched && std::string(launched) == "1";
}

}  // namespace

Progress::Progress(int64_t start, int64_t total, bool enabled)
    : Progress(start, total, enabled, stderr_is_terminal()) {}

Progress::Progress(int64_t start, int64_t total, bool enabled, bool terminal)
    : start_(start),
      total_(total),
      draw_(enabled && terminal),
      began_(std::chrono::steady_clock::now()),
      last_draw_(began_ - std::chrono::seconds(1)) {}

double Progress::eta_seconds(int64_t done) const {
  if (done <= start_) return std::nan("");
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began_).count();
  return elapsed / static_cast<double>(done - start_) * static_cast<double>(total_ - done);
}

std::string Progress::render(int64_t done, const std::string& status) const {
  constexpr int kWidth = 24;
  const double fraction = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(kWidth, ' ');
  for (int i = 0; i < filled && i < kWidth; ++i) bar[i] = '=';
  if (filled < kWidth) bar[filled] = '>';
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began_).count();
  const double rate = done > start_ && elapsed > 0 ? (done - start_) / elapsed : 0.0;
  char buffer[160];
  std::snprintf(buffer, sizeof(buffer), "[%s] %lld/%lld %3d%%  %.2f it/s  eta %s", bar.c_str(),
                static_cast<long long>(done), static_cast<long long>(total_),
                static_cast<int>(fraction * 100), rate, format_duration(eta_seconds(done)).c_str());
  return status.empty() ? std::string(buffer) : std::string(buffer) + "  " + status;
}

void Progress::update(int64_t done, const std::string& status) {
  if (!draw_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(250)) return;
  last_draw_ = now;
  std::cerr << "\r\033[K" << render(done, status) << std::flush;
  drawn_ = true;
  if (done >= total_) {
    std::cerr << "\n";
    drawn_ = false;
  }
}

void Progress::clear() {
  if (!drawn_) return;
  std::cerr << "\r\033[K" << std::flush;
  drawn_ = false;
}

}  // namespace largedet::engine
