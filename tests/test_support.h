#pragma once
// Helpers shared by the CPU tests: deterministic inputs, poisoned outputs and
// the error measures the specification uses.
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ddpm/error.h"

namespace ddpm::test {

// The message of the ddpm::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Uniform values in [lo, hi), never all zero.
inline std::vector<float> random_values(std::size_t n, std::uint32_t seed, float lo = -1.5f,
                                        float hi = 1.5f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// An output buffer filled with NaN, so that an element left unwritten fails.
inline std::vector<float> poisoned(std::size_t n) {
  return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN());
}

// max |actual - expected| / max |expected|: the measure for a float32 backend
// against the float64 reference (element-wise relative error is meaningless
// near zero).
inline ::testing::AssertionResult close_relative_to_max(const std::vector<float>& actual,
                                                        const std::vector<double>& expected,
                                                        double tolerance) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << actual.size() << " vs "
                                         << expected.size();
  }
  double scale = 0.0, worst = 0.0;
  std::size_t worst_index = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    scale = std::max(scale, std::abs(expected[i]));
    const double d = std::abs(static_cast<double>(actual[i]) - expected[i]);
    if (!(d <= worst)) {  // also catches NaN
      worst = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
      worst_index = i;
    }
  }
  if (scale == 0.0) return ::testing::AssertionFailure() << "reference is all zeros";
  const double error = worst / scale;
  if (error <= tolerance) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max|actual - expected| / max|expected| = " << error << " > " << tolerance
         << "; worst at index " << worst_index << ": actual " << actual[worst_index]
         << ", expected " << expected[worst_index];
}

inline ::testing::AssertionResult bit_identical(const std::vector<float>& a,
                                                const std::vector<float>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "first difference at " << i << ": " << a[i]
                                           << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// A file of the source tree (a committed model, a fixture): under
// $DDPM_SOURCE_DIR when set, else where the build saw the sources when it is
// still there, else relative to the working directory (scripts/gpu-check runs
// carried binaries from the repository root of another machine).
inline std::string source_file(const std::string& relative) {
  if (const char* root = std::getenv("DDPM_SOURCE_DIR")) return std::string(root) + "/" + relative;
#ifdef DDPM_SOURCE_DIR
  const std::string built = std::string(DDPM_SOURCE_DIR) + "/" + relative;
  if (std::filesystem::exists(built)) return built;
#endif
  return relative;
}

// The message of the ddpm::Error that f throws, or "(no error)".
inline std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// message_of(f), run without root's privileges: as root, in a child process
// that has become "nobody" (uid/gid 65534), so that permission checks apply;
// otherwise here. Directories the child needs must be searchable by others.
inline std::string message_as_unprivileged(const std::function<void()>& f) {
  if (::geteuid() != 0) return message_of(f);
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "(no pipe)";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string message = "(cannot drop privileges)";
    if (::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0) {
      message = message_of(f);
    }
    [[maybe_unused]] const ssize_t written = ::write(pipe_fds[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string message;
  char buffer[256];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) message.append(buffer, n);
  ::close(pipe_fds[0]);
  ::waitpid(pid, nullptr, 0);
  return message;
}

// The sample mean and (biased) variance of `values`, and their count.
struct Moments {
  double mean = 0.0;
  double var = 0.0;
  double count = 0.0;
};
inline Moments moments(const std::vector<float>& values) {
  double sum = 0, sum_sq = 0;
  for (float v : values) sum += v, sum_sq += static_cast<double>(v) * v;
  const double n = static_cast<double>(values.size());
  return {sum / n, sum_sq / n - (sum / n) * (sum / n), n};
}

// Samples against a Gaussian law: mean and variance within 4 standard errors.
inline void expect_law(const std::vector<float>& values, double mean, double var, const std::string& label = {}) {
  const Moments m = moments(values);
  EXPECT_NEAR(m.mean, mean, 4 * std::sqrt(var / m.count)) << label;
  EXPECT_NEAR(m.var, var, 4 * var * std::sqrt(2 / m.count)) << label;
}

}  // namespace ddpm::test
