// The compact per-step records the CUDA kernels read from constant memory
// (kernels/step_rule.cuh): packing then unpacking keeps every field the
// update reads, so the GPU runs the same numbers as the CPU.
#include <gtest/gtest.h>

#include "kernels/step_rule.cuh"
#include "core/step_plan.h"
#include "test_support.h"

namespace ddpm {
namespace {

SamplerOptions options(SamplerKind sampler, PredictionType type) {
  SamplerOptions o;
  o.sampler = sampler;
  o.prediction_type = type;
  o.num_inference_steps = 40;
  o.timestep_spacing = TimestepSpacing::trailing;
  o.eta = sampler == SamplerKind::ddim ? 1.0 : 0.0;
  return o;
}

template <bool kFull>
void expect_round_trip_keeps_the_math(const SamplerOptions& o) {
  const Schedule schedule = Schedule::cosine(300);
  const auto records = detail::make_step_records(detail::make_plan(schedule, o).steps);
  const auto x = test::random_values(16, 1, -3.0f, 3.0f);
  const auto m = test::random_values(16, 2);
  for (const kernels::StepRecord& original : records) {
    float packed[kernels::kRecordWidthFull];
    kernels::pack_step_record(original, kFull, packed);
    const kernels::StepRecord r = kernels::unpack_step_record<kFull>(packed);
    EXPECT_EQ(r.sigma, original.sigma);
    EXPECT_EQ(r.sqrt_alpha_bar, original.sqrt_alpha_bar);
    EXPECT_EQ(r.sqrt_one_minus_alpha_bar, original.sqrt_one_minus_alpha_bar);
    for (std::size_t i = 0; i < x.size(); ++i) {
      // Bit-identical: the same floats go through the same functions.
      if constexpr (kFull) {
        const float x0 = kernels::process_x0<kernels::X0Mode::clip>(
            kernels::predicted_x0(x[i], m[i], r), -1.0f, 1.0f, 1.0f);
        const float x0_original = kernels::process_x0<kernels::X0Mode::clip>(
            kernels::predicted_x0(x[i], m[i], original), -1.0f, 1.0f, 1.0f);
        EXPECT_EQ(kernels::step_from_x0(x[i], m[i], x0, 0.4f, 0.7f, r),
                  kernels::step_from_x0(x[i], m[i], x0_original, 0.4f, 0.7f, original));
      } else {
        EXPECT_EQ(kernels::step_folded(x[i], m[i], 0.4f, 0.7f, r),
                  kernels::step_folded(x[i], m[i], 0.4f, 0.7f, original));
      }
    }
  }
}

TEST(StepRecords, PlainRecordKeepsTheFoldedUpdate) {
  for (SamplerKind sampler : {SamplerKind::ddpm, SamplerKind::ddim}) {
    for (PredictionType type :
         {PredictionType::epsilon, PredictionType::sample, PredictionType::v_prediction}) {
      expect_round_trip_keeps_the_math<false>(options(sampler, type));
    }
  }
}

TEST(StepRecords, FullRecordKeepsTheX0Update) {
  for (SamplerKind sampler : {SamplerKind::ddpm, SamplerKind::ddim}) {
    for (PredictionType type :
         {PredictionType::epsilon, PredictionType::sample, PredictionType::v_prediction}) {
      expect_round_trip_keeps_the_math<true>(options(sampler, type));
    }
  }
}

TEST(StepRecords, WidthsMatchTheDocumentedLayout) {
  EXPECT_EQ(kernels::record_width(false), 9);
  EXPECT_EQ(kernels::record_width(true), 13);
}

}  // namespace
}  // namespace ddpm
