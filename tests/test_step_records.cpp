// The compact per-step records the CUDA kernels read from constant memory
// (kernels/step_records.cuh): packing then unpacking keeps every field that
// each kernel's math reads, so the GPU runs the same numbers as the CPU.
#include <gtest/gtest.h>

#include "kernels/step_math.cuh"
#include "kernels/step_records.cuh"
#include "step_table.h"
#include "test_support.h"

namespace ddpm {
namespace {

template <bool kClipped>
void expect_round_trip_keeps_the_math(VarianceKind variance) {
  const Schedule schedule = Schedule::cosine(300);
  const auto table = detail::make_step_table(schedule, variance);
  const kernels::ClipSettings clip{kClipped, -1.0f, 1.0f};
  const auto x = test::random_values(16, 1, -3.0f, 3.0f);
  const auto eps = test::random_values(16, 2);
  for (int t = 0; t < schedule.steps(); ++t) {
    float record[kernels::kRecordWidthClipped];
    kernels::pack_step_record(table[t], kClipped, record);
    const kernels::StepCoefficients c = kernels::unpack_step_record<kClipped>(record);
    for (std::size_t i = 0; i < x.size(); ++i) {
      // Bit-identical: the same floats go through the same functions.
      EXPECT_EQ(kernels::reverse_step(x[i], eps[i], 0.7f, c, clip),
                kernels::reverse_step(x[i], eps[i], 0.7f, table[t], clip))
          << "t = " << t;
      EXPECT_EQ(kernels::forward_noise(x[i], eps[i], c), kernels::forward_noise(x[i], eps[i], table[t]));
      EXPECT_EQ(kernels::gaussian_prior_eps(x[i], 0.5f, 0.09f, c),
                kernels::gaussian_prior_eps(x[i], 0.5f, 0.09f, table[t]));
    }
  }
}

TEST(StepRecords, PlainRecordKeepsTheReverseAndForwardMath) {
  expect_round_trip_keeps_the_math<false>(VarianceKind::beta);
  expect_round_trip_keeps_the_math<false>(VarianceKind::posterior);
}

TEST(StepRecords, ClippedRecordKeepsThePosteriorFormMath) {
  expect_round_trip_keeps_the_math<true>(VarianceKind::beta);
  expect_round_trip_keeps_the_math<true>(VarianceKind::posterior);
}

TEST(StepRecords, WidthsMatchTheDocumentedLayout) {
  EXPECT_EQ(kernels::record_width(false), 5);
  EXPECT_EQ(kernels::record_width(true), 7);
}

}  // namespace
}  // namespace ddpm
