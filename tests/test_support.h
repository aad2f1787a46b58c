#pragma once
// Helpers shared by the CPU tests: deterministic inputs, poisoned outputs and
// the error measures the specification uses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

namespace ddpm::test {

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

// A fresh folder for one test's files (named after the process and the
// running test), removed with everything in it at the end.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix)
      : dir_(std::filesystem::temp_directory_path() /
             (prefix + "_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::create_directories(dir_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string str() const { return dir_.string(); }

 private:
  std::filesystem::path dir_;
};

}  // namespace ddpm::test
