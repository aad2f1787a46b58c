#include "progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace ddpm::cli {
namespace {

// A run shorter than this never shows a bar.
constexpr auto kQuietPeriod = std::chrono::milliseconds(500);
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr int kWidth = 30;

// Clears the current terminal line (carriage return + "erase to end of line").
void erase_line() { std::fputs("\r\033[K", stderr); }

}  // namespace

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)), enabled_(::isatty(STDERR_FILENO) == 1), start_(Clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) {
    erase_line();
    std::fflush(stderr);
  }
}

void ProgressBar::update(std::int64_t done, std::int64_t total) {
  if (!enabled_ || total <= 0) return;
  const Clock::time_point now = Clock::now();
  if (now - start_ < kQuietPeriod || (drawn_ && now - last_draw_ < kRedrawInterval)) return;
  last_draw_ = now;
  drawn_ = true;

  const double fraction =
      std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0);
  const int filled = static_cast<int>(fraction * kWidth);
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(kWidth - filled), '-');
  erase_line();
  if (fraction > 0.0) {
    const double remaining = elapsed / fraction - elapsed;
    std::fprintf(stderr, "%s [%s] %3d%%  %.1f s left", label_.c_str(), bar.c_str(),
                 static_cast<int>(fraction * 100.0), remaining);
  } else {
    std::fprintf(stderr, "%s [%s] %3d%%", label_.c_str(), bar.c_str(), 0);
  }
  std::fflush(stderr);
}

}  // namespace ddpm::cli
