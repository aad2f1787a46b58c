// Noise: Philox4x32-10 exactly as cuRAND computes it, the (seed, sample,
// element, stream, step) mapping, and the statistics of the normals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "kernels/noise_counter.cuh"
#include "kernels/philox.cuh"
#include "reference/reference.h"

namespace ddpm {
namespace {

using kernels::NoiseStream;

::testing::AssertionResult philox_is(const kernels::Philox4& r, std::uint32_t a, std::uint32_t b,
                                     std::uint32_t c, std::uint32_t d) {
  if (r.v[0] == a && r.v[1] == b && r.v[2] == c && r.v[3] == d) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << std::hex << r.v[0] << " " << r.v[1] << " " << r.v[2]
                                       << " " << r.v[3];
}

// Known-answer vectors of Philox4x32-10 published with Random123 (Salmon et al. 2011).
TEST(Philox, MatchesPublishedKnownAnswers) {
  EXPECT_TRUE(philox_is(kernels::philox4x32_10(0, 0, 0, 0, 0, 0), 0x6627e8d5, 0xe169c58d,
                        0xbc57ac4c, 0x9b00dbd8));
  EXPECT_TRUE(philox_is(kernels::philox4x32_10(~0u, ~0u, ~0u, ~0u, ~0u, ~0u), 0x408f276d,
                        0x41c83b0e, 0xa20bc7c6, 0x6d5451fd));
  EXPECT_TRUE(philox_is(kernels::philox4x32_10(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344,
                                               0xa4093822, 0x299f31d0),
                        0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1));
}

TEST(Philox, MatchesCuRandRawOutputUnderTheEngineMapping) {
#if !defined(DDPM_HAVE_CURAND_HEADERS)
  GTEST_SKIP() << "cuRAND headers not found at configure time";
#endif
  // curand_init(seed, subsequence, offset) puts the subsequence in counter
  // words 2-3 and offset / 4 in words 0-1, keyed by the seed.
  EXPECT_EQ(reference::philox_raw(0, 0, 0), (std::vector<std::uint32_t>{0x6627e8d5, 0xe169c58d,
                                                                         0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(reference::philox_raw(0x0123456789abcdefull, 7, 4 * ((2ull << 60) | 3)),
            (std::vector<std::uint32_t>{0x6fe8b349, 0xb9617072, 0x586536fa, 0x64940ff4}));
  for (std::uint64_t seed : {1ull, 42ull, 0xdeadbeefcafef00dull}) {
    for (std::uint64_t sample : {0ull, 5ull, (1ull << 40) + 3}) {
      for (std::uint32_t step : {0u, 1u, 999u}) {
        for (std::uint64_t group : {0ull, 77ull, 0xfffffffeull}) {
          const std::uint64_t counter = kernels::noise_counter(NoiseStream::reverse, step, group);
          const kernels::Philox4 ours = kernels::philox4x32_10(
              static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
              static_cast<std::uint32_t>(sample), static_cast<std::uint32_t>(sample >> 32),
              static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
          const std::vector<std::uint32_t> theirs =
              reference::philox_raw(seed, sample, kernels::noise_offset(NoiseStream::reverse, step, group));
          EXPECT_EQ(std::vector<std::uint32_t>(ours.v, ours.v + 4), theirs);
        }
      }
    }
  }
}

TEST(Philox, CuRandNormalsMatchKnownAnswer) {
#if !defined(DDPM_HAVE_CURAND_HEADERS)
  GTEST_SKIP() << "cuRAND headers not found at configure time";
#endif
  // curand_init(1, 2, 20) + curand_normal4, host build of cuRAND 13.0.
  const double expected[4] = {-1.36478043, -0.715892315, 1.20850194, -1.78732717};
  for (int j = 0; j < 4; ++j) {
    // offset 20 = 4 * counter 5 = stream reverse, step 0, group 5.
    EXPECT_NEAR(reference::normal(1, 2, NoiseStream::reverse, 0, 20 + j), expected[j], 1e-7);
  }
}

TEST(NoiseCounter, SeparatesStreamsStepsAndGroups) {
  EXPECT_NE(kernels::noise_counter(NoiseStream::reverse, 5, 0),
            kernels::noise_counter(NoiseStream::forward, 5, 0));
  EXPECT_NE(kernels::noise_counter(NoiseStream::reverse, 5, 0),
            kernels::noise_counter(NoiseStream::reverse, 6, 0));
  EXPECT_EQ(kernels::noise_counter(NoiseStream::reverse, 5, 9) -
                kernels::noise_counter(NoiseStream::reverse, 5, 0),
            9u);
  EXPECT_EQ(kernels::noise_offset(NoiseStream::initial, 0, 1), 4 * kernels::noise_counter(NoiseStream::initial, 0, 1));
}

TEST(NoiseCounter, FieldsDoNotOverflowIntoEachOtherAtTheEnginesLimits) {
  // The largest step (T = kMaxSteps) and element group (dim = 4 * 2^32)
  // the engine accepts stay inside their fields, and the 4x offset fits.
  const std::uint64_t last_step = kMaxSteps - 1;
  const std::uint64_t last_group = 0xFFFFFFFFull;
  for (const NoiseStream stream : {NoiseStream::reverse, NoiseStream::forward,
                                   NoiseStream::initial, NoiseStream::forward_one_step}) {
    const std::uint64_t counter = kernels::noise_counter(stream, last_step, last_group);
    EXPECT_EQ(counter & 0xFFFFFFFFull, last_group);
    EXPECT_EQ((counter >> 32) & ((1ull << kernels::kStepBits) - 1), last_step);
    EXPECT_EQ(counter >> (32 + kernels::kStepBits), static_cast<std::uint64_t>(stream));
    EXPECT_EQ(kernels::noise_offset(stream, last_step, last_group) / 4, counter);
  }
}

// The kernel sets this machine can run.
std::vector<const cpu::CpuKernels*> kernel_sets() {
  std::vector<const cpu::CpuKernels*> sets{&cpu::generic_kernels()};
  if (&cpu::cpu_kernels() != &cpu::generic_kernels()) sets.push_back(&cpu::cpu_kernels());
  return sets;
}

// Normals drawn by the CPU kernels for a [batch, dim] block.
std::vector<float> kernel_normals(const cpu::CpuKernels& k, std::uint64_t seed, std::int64_t first,
                                  std::int64_t batch, std::int64_t dim, NoiseStream stream,
                                  std::uint32_t step) {
  std::vector<float> out(static_cast<std::size_t>(batch * dim), std::nanf(""));
  const bool packed = cpu::packs_rows(dim);
  if (packed) {
    k.normals({seed, first}, {0, batch, 0, dim}, dim, stream, step, out.data());
  } else {
    for (std::int64_t row = 0; row < batch; ++row) {
      for (std::int64_t b = 0; b < dim; b += cpu::kSegment) {
        k.normals({seed, first}, {row, row + 1, b, std::min(dim, b + cpu::kSegment)}, dim, stream,
                  step, out.data());
      }
    }
  }
  return out;
}

class CpuNormals : public ::testing::TestWithParam<std::int64_t> {};

TEST_P(CpuNormals, MatchCuRandReferenceForEveryElement) {
  const std::int64_t dim = GetParam();
  const std::int64_t batch = 5, first = 1000;
  for (const cpu::CpuKernels* k : kernel_sets()) {
    const std::vector<float> ours = kernel_normals(*k, 77, first, batch, dim, NoiseStream::reverse, 321);
    double worst = 0.0;
    for (std::int64_t row = 0; row < batch; ++row) {
      const std::vector<double> ref =
          reference::normals(77, static_cast<std::uint64_t>(first + row), NoiseStream::reverse, 321, dim);
      for (std::int64_t i = 0; i < dim; ++i) {
        const double d = std::abs(ours[static_cast<std::size_t>(row * dim + i)] - ref[static_cast<std::size_t>(i)]);
        worst = std::isnan(d) ? INFINITY : std::max(worst, d);
      }
    }
    // Cephes log/sincos against libm: a few ulp of values up to ~6.
    EXPECT_LT(worst, 4e-6) << k->name << " dim " << dim;
  }
}

// Short (packed), block-sized, odd and multi-segment rows.
INSTANTIATE_TEST_SUITE_P(Dims, CpuNormals, ::testing::Values(1, 2, 3, 7, 64, 129, 256, 1001, 5000));

TEST(CpuNormals, InstructionSetsAgree) {
  const auto sets = kernel_sets();
  if (sets.size() < 2) GTEST_SKIP() << "only the portable kernels run on this processor";
  for (std::int64_t dim : {3, 300, 4099}) {
    const auto a = kernel_normals(*sets[0], 5, 0, 3, dim, NoiseStream::initial, 0);
    const auto b = kernel_normals(*sets[1], 5, 0, 3, dim, NoiseStream::initial, 0);
    for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-6) << "index " << i;
  }
}

// Mean, variance, skewness and excess kurtosis of n normals: each within
// 5 standard errors (sqrt(1/n), sqrt(2/n), sqrt(6/n), sqrt(24/n)).
TEST(CpuNormals, HaveStandardNormalMoments) {
  const std::int64_t n = 1 << 21;
  const auto z = kernel_normals(cpu::cpu_kernels(), 2024, 0, 64, n / 64, NoiseStream::initial, 0);
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
  for (float v : z) {
    m1 += v;
    m2 += double(v) * v;
    m3 += double(v) * v * v;
    m4 += double(v) * v * v * v;
  }
  m1 /= n, m2 /= n, m3 /= n, m4 /= n;
  const double var = m2 - m1 * m1;
  EXPECT_NEAR(m1, 0.0, 5 * std::sqrt(1.0 / n));
  EXPECT_NEAR(var, 1.0, 5 * std::sqrt(2.0 / n));
  EXPECT_NEAR(m3, 0.0, 5 * std::sqrt(6.0 / n));
  EXPECT_NEAR(m4 - 3.0, 0.0, 5 * std::sqrt(24.0 / n));
}

// Kolmogorov-Smirnov against the standard normal CDF; the 1% critical value
// of D is 1.628 / sqrt(n).
TEST(CpuNormals, PassKolmogorovSmirnov) {
  for (std::uint64_t seed : {1ull, 99ull}) {
    auto z = kernel_normals(cpu::cpu_kernels(), seed, 0, 100, 1000, NoiseStream::reverse, 17);
    std::sort(z.begin(), z.end());
    const double n = static_cast<double>(z.size());
    double d = 0.0;
    for (std::size_t i = 0; i < z.size(); ++i) {
      const double cdf = 0.5 * std::erfc(-z[i] / std::sqrt(2.0));
      d = std::max({d, std::abs(cdf - i / n), std::abs((i + 1) / n - cdf)});
    }
    EXPECT_LT(d, 1.628 / std::sqrt(n)) << "seed " << seed;
  }
}

TEST(CpuNormals, DifferentStepsAndSamplesAreUncorrelated) {
  const auto a = kernel_normals(cpu::cpu_kernels(), 3, 0, 10, 10000, NoiseStream::reverse, 10);
  const auto b = kernel_normals(cpu::cpu_kernels(), 3, 0, 10, 10000, NoiseStream::reverse, 11);
  const auto c = kernel_normals(cpu::cpu_kernels(), 3, 10, 10, 10000, NoiseStream::reverse, 10);
  const auto corr = [](const std::vector<float>& x, const std::vector<float>& y) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += double(x[i]) * y[i];
    return s / x.size();
  };
  const double bound = 5.0 / std::sqrt(100000.0);
  EXPECT_LT(std::abs(corr(a, b)), bound);
  EXPECT_LT(std::abs(corr(a, c)), bound);
}

}  // namespace
}  // namespace ddpm
