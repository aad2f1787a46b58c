#pragma once
// A progress bar on stderr for long runs. It appears only when stderr is a
// terminal (scripts and logs get no control characters) and only once the
// run has lasted a moment (quick runs stay silent). It is erased when the
// bar is destroyed, so the summary or an error message starts on a clean line.
#include <chrono>
#include <cstdint>
#include <string>

namespace ddpm::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Cheap to call often: redraws at most ten times a second.
  void update(std::int64_t done, std::int64_t total);

 private:
  using Clock = std::chrono::steady_clock;

  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_draw_;
};

}  // namespace ddpm::cli
