// MlpPredictor on the CPU: the committed digits model against the PyTorch
// fixture written by scripts/train_digits.py, its labels and steps per row,
// and model files that are broken on purpose.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ddpm/error.h"
#include "ddpm/mlp_predictor.h"
#include "ddpm/sampler.h"
#include "predictors/networks/mlp/mlp_math.cuh"
#include "predictors/networks/mlp/mlp_network.h"
#include "io/safetensors.h"
#include "safetensors_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

// OpenBLAS's own (cblas.h would bring the whole C interface in).
extern "C" void openblas_set_num_threads(int threads);

namespace ddpm {
namespace {

const std::string kModel = test::source_file("models/digits.safetensors");
const std::string kFixture = test::source_file("tests/data/digits_mlp_fixture.safetensors");

// The fixture's rows: inputs, integer steps and labels (stored as F32), outputs.
struct PyTorchFixture {
  std::int64_t rows = 0;
  std::vector<float> x_t, output, output_exact_embedding, output_float64, temb, temb_exact;
  std::vector<std::int32_t> steps, labels;

  PyTorchFixture() {
    const auto file = detail::SafetensorsFile::open(kFixture);
    x_t = file.at("x_t").to_floats();
    output = file.at("output").to_floats();
    output_exact_embedding = file.at("output_exact_embedding").to_floats();
    output_float64 = file.at("output_float64").to_floats();
    temb = file.at("temb").to_floats();
    temb_exact = file.at("temb_exact").to_floats();
    for (float t : file.at("timestep").to_floats()) steps.push_back(static_cast<std::int32_t>(t));
    for (float l : file.at("label").to_floats()) labels.push_back(static_cast<std::int32_t>(l));
    rows = static_cast<std::int64_t>(steps.size());
  }
  std::vector<float> row(const std::vector<float>& values, std::int64_t r, std::int64_t width) const {
    return {values.begin() + r * width, values.begin() + (r + 1) * width};
  }
};

const Schedule& schedule() {
  static const Schedule s = Schedule::linear(1000);
  return s;
}

// The network's output for `rows` rows of x, into a NaN-poisoned buffer.
std::vector<float> predict(MlpPredictor& p, const std::vector<float>& x, std::int64_t rows,
                           const std::int32_t* steps, int step = 0) {
  std::vector<float> out = test::poisoned(x.size());
  PredictorCall call;
  call.x_t = x.data();
  call.eps = out.data();
  call.prediction_type = p.prediction_type();
  call.shape = {rows, p.data_dim()};
  call.step = step;
  call.steps = steps;
  call.schedule = &schedule();
  p.predict(call);
  return out;
}

TEST(MlpPredictor, ReadsTheModelCard) {
  const MlpPredictor p(kModel);
  EXPECT_EQ(p.card().architecture, "mlp_denoiser");
  EXPECT_EQ(p.data_dim(), 64);
  EXPECT_EQ(p.card().data_shape, (std::vector<std::int64_t>{8, 8}));
  EXPECT_EQ(p.num_classes(), 10);
  EXPECT_EQ(p.null_label(), 10);
  EXPECT_EQ(p.prediction_type(), PredictionType::v_prediction);
  EXPECT_EQ(p.scheduler_config().schedule.steps, 1000);
  EXPECT_EQ(p.scheduler_config().schedule.kind, ScheduleKind::linear);
  EXPECT_DOUBLE_EQ(p.scheduler_config().schedule.beta_start, 1e-4);
  EXPECT_DOUBLE_EQ(p.scheduler_config().schedule.beta_end, 0.02);
  EXPECT_FALSE(p.scheduler_config().options.clip_x0.has_value());  // see scripts/train_digits.py
  EXPECT_EQ(p.scheduler_config().options.timestep_spacing, TimestepSpacing::trailing);
  EXPECT_EQ(p.scheduler_config().options.prediction_type, PredictionType::v_prediction);
  const ScheduleSpec spec = p.scheduler_config().schedule;
  EXPECT_EQ(spec.kind, ScheduleKind::linear);
  EXPECT_EQ(spec.steps, 1000);
  EXPECT_FLOAT_EQ(p.normalization().to_pixel(-1.0f), 0.0f);
  EXPECT_FLOAT_EQ(p.normalization().to_pixel(1.0f), 16.0f);
  EXPECT_EQ(p.card().sampler.num_inference_steps, 50);
}

// ddpm computes diffusers' embedding with each float32 operation correctly
// rounded ("temb_exact"); torch's own float32 exp may be an ulp off, which
// moves sin(t f) by up to t * ulp(f) ~ 6e-5 at t = 999 ("temb").
TEST(MlpPredictor, TimestepEmbeddingMatchesDiffusers) {
  const PyTorchFixture f;
  const MlpPredictor p(kModel);
  const int dim = p.card().time_embedding.dim;
  for (std::int64_t r = 0; r < f.rows; ++r) {
    std::vector<float> temb(static_cast<std::size_t>(dim));
    detail::timestep_embedding(p.card().time_embedding, static_cast<float>(f.steps[r]), temb.data());
    EXPECT_TRUE(test::close_relative_to_max(temb, test::to_double(f.row(f.temb_exact, r, dim)), 1e-7))
        << "t = " << f.steps[r];
    EXPECT_TRUE(test::close_relative_to_max(temb, test::to_double(f.row(f.temb, r, dim)), 1e-4))
        << "t = " << f.steps[r] << " against torch's float32 embedding";
  }
}

// The embedding's sines (src/predictors/networks/mlp/mlp_math.cuh): exactly std::sin and std::cos
// below 2^30, where every real card's angles lie; above, finite and equal to
// the sine of the angle reduced modulo the double nearest 2 pi; NaN for a
// non-finite angle. The GPU test FractionalTimesMatchPyTorch runs the same
// function in the kernel.
TEST(MlpPredictor, EmbeddingSinesAreExactBelowTwoToThe30AndFiniteAbove) {
  const auto sin_cos = [](double x) {
    double s = std::numeric_limits<double>::quiet_NaN();  // poisoned
    double c = std::numeric_limits<double>::quiet_NaN();
    kernels::sin_cos_below_2_30(x, &s, &c);
    return std::pair{s, c};
  };
  for (const double x : {0.0, -0.0, 1e-300, 0.5, -3.0, 999.0 * 0.7, 12345.678, -1e6, 0x1p30 - 64.0}) {
    const auto [s, c] = sin_cos(x);
    EXPECT_EQ(s, std::sin(x)) << "x = " << x;
    EXPECT_EQ(c, std::cos(x)) << "x = " << x;
  }
  for (const double x : {0x1p30, -0x1p30, 3.0e9, 1e20, -3.4e38}) {
    const auto [s, c] = sin_cos(x);
    const double r = std::fmod(x, 6.283185307179586);
    EXPECT_EQ(s, std::sin(r)) << "x = " << x;
    EXPECT_EQ(c, std::cos(r)) << "x = " << x;
    EXPECT_NEAR(s * s + c * c, 1.0, 1e-15) << "x = " << x;
  }
  for (const double x : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                         std::numeric_limits<double>::quiet_NaN()}) {
    const auto [s, c] = sin_cos(x);
    EXPECT_TRUE(std::isnan(s) && std::isnan(c)) << "x = " << x;
  }
}

TEST(MlpPredictor, MatchesPyTorchFixtureRowByRow) {
  const PyTorchFixture f;
  MlpPredictor p(kModel, {.threads = 2});
  p.set_class_labels(f.labels);
  p.prepare(schedule(), Memory::host, {f.rows, 64}, nullptr);
  const std::vector<float> out = predict(p, f.x_t, f.rows, f.steps.data());
  for (std::int64_t r = 0; r < f.rows; ++r) {
    const auto row = f.row(out, r, 64);
    const std::string where = "row " + std::to_string(r) + ": t = " + std::to_string(f.steps[r]) +
                              ", label " + std::to_string(f.labels[r]);
    EXPECT_TRUE(test::close_relative_to_max(row, test::to_double(f.row(f.output, r, 64)), 1e-5))
        << where << ", against PyTorch's float32 forward pass as it runs";
    EXPECT_TRUE(test::close_relative_to_max(
        row, test::to_double(f.row(f.output_exact_embedding, r, 64)), 1e-5))
        << where << ", against PyTorch's float32 forward pass on the exact embedding";
    EXPECT_TRUE(test::close_relative_to_max(row, test::to_double(f.row(f.output_float64, r, 64)), 1e-5))
        << where << ", against PyTorch's float64 forward pass on the exact embedding";
  }
}

// The fixture's rows at fractional times (tests/data/digits_sampler_fixture.safetensors):
// 4 rows at each of 4 times, as Euler's and Karras sigmas' steps call the model.
struct FractionalFixture {
  static constexpr std::int64_t kRowsPerTime = 4;
  std::vector<float> x_t, timestep, output, output_exact_embedding, temb_exact;
  std::vector<std::int32_t> labels;

  FractionalFixture() {
    const auto file = detail::SafetensorsFile::open(test::source_file("tests/data/digits_sampler_fixture.safetensors"));
    x_t = file.at("frac_x_t").to_floats();
    timestep = file.at("frac_timestep").to_floats();
    output = file.at("frac_output").to_floats();
    output_exact_embedding = file.at("frac_output_exact_embedding").to_floats();
    temb_exact = file.at("frac_temb_exact").to_floats();
    for (float l : file.at("frac_label").to_floats()) labels.push_back(static_cast<std::int32_t>(l));
  }
  std::int64_t groups() const { return static_cast<std::int64_t>(timestep.size()) / kRowsPerTime; }
  float time(std::int64_t g) const { return timestep[static_cast<std::size_t>(g * kRowsPerTime)]; }
  std::vector<float> rows(const std::vector<float>& values, std::int64_t g) const {
    const std::size_t width = values.size() / timestep.size() * kRowsPerTime;
    return {values.begin() + g * width, values.begin() + (g + 1) * width};
  }
  std::vector<std::int32_t> group_labels(std::int64_t g) const {
    return {labels.begin() + g * kRowsPerTime, labels.begin() + (g + 1) * kRowsPerTime};
  }
};

// One call for the batch at `time` as the engine makes it: the step is the
// time rounded, the timestep the time itself.
std::vector<float> predict_at_time(MlpPredictor& p, const std::vector<float>& x, std::int64_t rows,
                                   float time) {
  std::vector<float> out = test::poisoned(x.size());
  PredictorCall call;
  call.x_t = x.data();
  call.eps = out.data();
  call.prediction_type = p.prediction_type();
  call.shape = {rows, p.data_dim()};
  call.step = static_cast<int>(std::lround(time));
  call.timestep = time;
  call.schedule = &schedule();
  p.predict(call);
  return out;
}

TEST(MlpPredictor, FractionalTimestepEmbeddingMatchesDiffusers) {
  const FractionalFixture f;
  const MlpPredictor p(kModel);
  const int dim = p.card().time_embedding.dim;
  for (std::int64_t g = 0; g < f.groups(); ++g) {
    std::vector<float> temb(static_cast<std::size_t>(dim));
    detail::timestep_embedding(p.card().time_embedding, f.time(g), temb.data());
    const std::vector<float> expected = f.rows(f.temb_exact, g);
    EXPECT_TRUE(test::close_relative_to_max(
        temb, test::to_double({expected.begin(), expected.begin() + dim}), 1e-7))
        << "t = " << f.time(g);
  }
}

// diffusers passes Euler's and Karras sigmas' fractional timesteps to the
// network's embedding as they are; so must the predictor.
TEST(MlpPredictor, MatchesPyTorchAtFractionalTimesteps) {
  const FractionalFixture f;
  MlpPredictor p(kModel, {.threads = 2});
  for (std::int64_t g = 0; g < f.groups(); ++g) {
    p.set_class_labels(f.group_labels(g));
    const std::vector<float> x = f.rows(f.x_t, g);
    const std::vector<float> out = predict_at_time(p, x, FractionalFixture::kRowsPerTime, f.time(g));
    const std::string where = "t = " + std::to_string(f.time(g));
    EXPECT_TRUE(test::close_relative_to_max(out, test::to_double(f.rows(f.output_exact_embedding, g)), 1e-5))
        << where << ", against PyTorch's float32 forward pass on the exact embedding";
    EXPECT_TRUE(test::close_relative_to_max(out, test::to_double(f.rows(f.output, g)), 1e-5))
        << where << ", against PyTorch's float32 forward pass as it runs";
    // The step's table row is a different input: the time must not be rounded.
    const int step = static_cast<int>(std::lround(f.time(g)));
    EXPECT_FALSE(test::close_relative_to_max(predict(p, x, FractionalFixture::kRowsPerTime, nullptr, step),
                                             test::to_double(f.rows(f.output, g)), 1e-4))
        << where << ": the output at step " << step << " is as close as the fractional time's";
  }
}

TEST(MlpPredictor, AWholeTimestepUsesTheTableAndADirectCallItsStep) {
  const PyTorchFixture f;
  MlpPredictor p(kModel, {.threads = 2});
  p.set_class_labels(f.labels);
  // timestep == step: the precomputed row, bit for bit the per-row-steps path.
  const std::vector<std::int32_t> steps(static_cast<std::size_t>(f.rows), 437);
  EXPECT_TRUE(test::bit_identical(predict_at_time(p, f.x_t, f.rows, 437.0f),
                                  predict(p, f.x_t, f.rows, steps.data())));
  // A direct call that sets only the step (timestep left at 0) gets its step.
  EXPECT_TRUE(test::bit_identical(predict(p, f.x_t, f.rows, nullptr, 437),
                                  predict(p, f.x_t, f.rows, steps.data())));
  // A fractional time close to a step computes its condition: near the table row, not equal.
  const std::vector<float> near = predict_at_time(p, f.x_t, f.rows, 437.0f + 1.0f / 1024.0f);
  EXPECT_FALSE(test::bit_identical(near, predict(p, f.x_t, f.rows, steps.data())));
  EXPECT_TRUE(test::close_relative_to_max(near, test::to_double(predict(p, f.x_t, f.rows, steps.data())), 1e-2));
}

TEST(MlpPredictor, PerRowLabelsAndStepsEqualOneCallPerRow) {
  const PyTorchFixture f;
  MlpPredictor batched(kModel, {.threads = 2});
  batched.set_class_labels(f.labels);
  const std::vector<float> all = predict(batched, f.x_t, f.rows, f.steps.data());
  MlpPredictor single(kModel, {.threads = 1});
  for (std::int64_t r = 0; r < f.rows; ++r) {
    single.set_class_label(f.labels[r]);
    const std::vector<float> one = predict(single, f.row(f.x_t, r, 64), 1, nullptr, f.steps[r]);
    // One row runs sgemv, a batch sgemm: the sums are ordered differently.
    EXPECT_TRUE(test::close_relative_to_max(one, test::to_double(f.row(all, r, 64)), 5e-6)) << "row " << r;
  }
}

TEST(MlpPredictor, OneStepForTheBatchEqualsThatStepPerRow) {
  const PyTorchFixture f;
  MlpPredictor p(kModel, {.threads = 2});
  p.set_class_labels(f.labels);
  for (int t : {0, 1, 500, 999}) {
    const std::vector<std::int32_t> steps(static_cast<std::size_t>(f.rows), t);
    EXPECT_TRUE(test::bit_identical(predict(p, f.x_t, f.rows, nullptr, t),
                                    predict(p, f.x_t, f.rows, steps.data())))
        << "t = " << t;
  }
}

TEST(MlpPredictor, LabelsChangeTheOutputAndDefaultToTheNullLabel) {
  const PyTorchFixture f;
  MlpPredictor p(kModel);
  const std::vector<float> by_default = predict(p, f.x_t, f.rows, nullptr, 300);
  p.set_class_label(p.null_label());
  EXPECT_TRUE(test::bit_identical(by_default, predict(p, f.x_t, f.rows, nullptr, 300)));
  p.set_class_label(3);
  const std::vector<float> three = predict(p, f.x_t, f.rows, nullptr, 300);
  EXPECT_FALSE(test::bit_identical(by_default, three));
  const std::vector<std::int32_t> threes(static_cast<std::size_t>(f.rows), 3);
  p.set_class_labels(threes);
  EXPECT_TRUE(test::bit_identical(three, predict(p, f.x_t, f.rows, nullptr, 300)));
}

// Rows [first, first + rows) of x (row-major, 64 wide) as one call whose
// rows are global samples first_sample + r; sample_rows as a guided call has it.
std::vector<float> predict_part(MlpPredictor& p, const std::vector<float>& x, std::int64_t first,
                                std::int64_t rows, int step, std::int64_t sample_rows = 0) {
  const std::vector<float> part(x.begin() + first * 64, x.begin() + (first + rows) * 64);
  std::vector<float> out = test::poisoned(part.size());
  PredictorCall call;
  call.x_t = part.data();
  call.eps = out.data();
  call.prediction_type = p.prediction_type();
  call.shape = {rows, 64};
  call.step = step;
  call.first_sample = first;
  call.sample_rows = sample_rows;
  call.schedule = &schedule();
  p.predict(call);
  return out;
}

// 300 rows: the fixture's, repeated with a different scale each time.
std::vector<float> many_rows(const PyTorchFixture& f, int copies) {
  std::vector<float> x;
  for (int k = 0; k < copies; ++k) {
    for (float v : f.x_t) x.push_back(v * (1.0f + 0.01f * static_cast<float>(k)));
  }
  return x;
}

TEST(MlpPredictor, ThreadCountDoesNotChangeABit) {
  const PyTorchFixture f;
  const std::vector<float> x = many_rows(f, 40);
  const std::int64_t rows = 40 * f.rows;
  MlpPredictor one(kModel, {.threads = 1});
  MlpPredictor two(kModel, {.threads = 2});
  MlpPredictor three(kModel, {.threads = 3});
  for (MlpPredictor* p : {&one, &two, &three}) p->set_class_label(4);
  const std::vector<float> reference = predict(one, x, rows, nullptr, 640);
  for (float v : reference) ASSERT_TRUE(std::isfinite(v));
  EXPECT_TRUE(test::bit_identical(predict(two, x, rows, nullptr, 640), reference));
  EXPECT_TRUE(test::bit_identical(predict(three, x, rows, nullptr, 640), reference));
}

TEST(MlpPredictor, OpenBlasThreadsAtLoadDoNotChangeABit) {
  // The condition tables are products over every timestep, made at load:
  // with OpenBLAS's pool at 4 threads they must come out as with 1.
  const PyTorchFixture f;
  openblas_set_num_threads(1);
  MlpPredictor one(kModel);
  openblas_set_num_threads(4);
  MlpPredictor four(kModel);
  one.set_class_label(2);
  four.set_class_label(2);
  EXPECT_TRUE(test::bit_identical(predict(four, f.x_t, f.rows, f.steps.data()),
                                  predict(one, f.x_t, f.rows, f.steps.data())));
}

TEST(MlpPredictor, PartsThatBeginAtMultiplesOf64GiveTheSameBits) {
  const PyTorchFixture f;
  const std::vector<float> x = many_rows(f, 30);
  const std::int64_t rows = 30 * f.rows;
  ASSERT_GT(rows, 3 * kMlpRowBlock);
  MlpPredictor p(kModel, {.threads = 2});
  EXPECT_EQ(p.split_alignment(), kMlpRowBlock);
  p.set_class_label(7);
  const std::vector<float> whole = predict_part(p, x, 0, rows, 250);
  for (const std::vector<std::int64_t>& cuts :
       {std::vector<std::int64_t>{64}, {128, 192}, {64, 128, 192, 256}, {192}}) {
    std::vector<float> joined;
    std::int64_t begin = 0;
    std::vector<std::int64_t> ends = cuts;
    ends.push_back(rows);
    for (std::int64_t end : ends) {
      const std::vector<float> part = predict_part(p, x, begin, end - begin, 250);
      joined.insert(joined.end(), part.begin(), part.end());
      begin = end;
    }
    EXPECT_TRUE(test::bit_identical(joined, whole)) << "first cut at " << cuts.front();
  }
  // One row alone is a matrix-vector product, its block in a batch a matrix
  // product: a part that cuts a block agrees to rounding only.
  const std::vector<float> cut = predict_part(p, x, 10, 100, 250);
  EXPECT_TRUE(test::close_relative_to_max(
      cut, test::to_double(std::vector<float>(whole.begin() + 10 * 64, whole.begin() + 110 * 64)),
      5e-6));
}

TEST(MlpPredictor, AGuidedCallComputesBothHalvesAsTheirSamples) {
  // [x; x] with sample_rows = rows: the second half is cut into blocks as
  // the first is, so each half equals a call over x alone.
  const PyTorchFixture f;
  const std::vector<float> x = many_rows(f, 12);
  const std::int64_t rows = 12 * f.rows;
  std::vector<float> doubled = x;
  doubled.insert(doubled.end(), x.begin(), x.end());
  MlpPredictor p(kModel, {.threads = 2});
  std::vector<std::int32_t> labels(static_cast<std::size_t>(2 * rows), p.null_label());
  for (std::int64_t r = 0; r < rows; ++r) labels[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(r % 10);
  p.set_class_labels(labels);
  const std::int64_t first = 64;  // a part of a larger job
  std::vector<float> both = test::poisoned(doubled.size());
  PredictorCall call;
  call.x_t = doubled.data();
  call.eps = both.data();
  call.prediction_type = p.prediction_type();
  call.shape = {2 * rows, 64};
  call.step = 321;
  call.first_sample = first;
  call.sample_rows = rows;
  call.schedule = &schedule();
  p.predict(call);
  p.set_class_label(p.null_label());
  std::vector<float> unconditional = test::poisoned(x.size());
  call.x_t = x.data();
  call.eps = unconditional.data();
  call.shape = {rows, 64};
  call.sample_rows = 0;
  p.predict(call);
  EXPECT_TRUE(test::bit_identical(std::vector<float>(both.begin() + rows * 64, both.end()),
                                  unconditional));
  // The conditional half: the same x, labels and block cuts as the first
  // rows of a call with first_sample 64.
  p.set_class_labels(labels);
  call.x_t = x.data();
  std::vector<float> conditional_alone = test::poisoned(x.size());
  call.eps = conditional_alone.data();
  p.predict(call);
  EXPECT_TRUE(test::bit_identical(std::vector<float>(both.begin(), both.begin() + rows * 64),
                                  conditional_alone));
  EXPECT_FALSE(test::bit_identical(conditional_alone, unconditional));
}

using test::error_of;

TEST(MlpPredictor, RefusesBadCallsWithOneLine) {
  MlpPredictor p(kModel);
  const std::vector<float> x(64 * 2, 0.0f);
  EXPECT_NE(error_of([&] { p.set_class_label(11); }).find("class label 11 is outside 0..9 and the null label 10"),
            std::string::npos);
  EXPECT_NE(error_of([&] { p.set_class_labels(std::vector<std::int32_t>{1, -1}); }).find("class label -1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { p.prepare(schedule(), Memory::host, {2, 63}, nullptr); })
                .find("the model has data dim 64 but samples have dim 63"),
            std::string::npos);
  EXPECT_NE(error_of([&] { p.prepare(Schedule::linear(100), Memory::host, {2, 64}, nullptr); })
                .find("trained with 1000 timesteps but the schedule has 100"),
            std::string::npos);
  EXPECT_NE(error_of([&] { predict(p, x, 2, nullptr, 1000); }).find("step 1000 is outside the model's 0..999"),
            std::string::npos);
  const std::vector<std::int32_t> steps{5, -1};
  EXPECT_NE(error_of([&] { predict(p, x, 2, steps.data()); }).find("row 1 has step -1"), std::string::npos);
  p.set_class_labels(std::vector<std::int32_t>{1});
  EXPECT_NE(error_of([&] { predict(p, x, 2, nullptr, 3); }).find("2 rows but 1 class labels were set"),
            std::string::npos);
  p.set_class_label(3);
  EXPECT_NE(error_of([&] {
              std::vector<float> out(x.size());
              PredictorCall call;
              call.prediction_type = PredictionType::v_prediction;
              call.x_t = x.data();
              call.model_output = out.data();
              call.shape = {2, 64};
              call.memory = Memory::device;
              p.predict(call);
            }).find("call prepare() with Memory::device"),
            std::string::npos);
}

TEST(MlpPredictor, DeviceMemoryWithoutAUsableGpuIsAnError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is usable: tests/gpu covers it";
  MlpPredictor p(kModel);
  EXPECT_THROW(p.prepare(schedule(), Memory::device, {4, 64}, nullptr), Error);
}

// ---- broken model files, made from the committed one

class BrokenModel : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto file = detail::SafetensorsFile::open(kModel);
    tensors_ = test::tensors_of(file);
    card_ = nlohmann::json::parse(file.metadata().at(kModelCardKey));
  }
  // Writes the (modified) model and returns the error of loading it.
  std::string load_error(const std::map<std::string, std::string>* metadata = nullptr) {
    const std::string path = (scratch_ / "model.safetensors");
    const std::map<std::string, std::string> with_card{{kModelCardKey, card_.dump()}};
    test::write_bytes(path, test::safetensors_bytes(tensors_, metadata ? *metadata : with_card));
    const std::string message = error_of([&] { MlpPredictor p(path); });
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    if (!message.empty()) {
      EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << "does not name the file: " << message;
    }
    return message;
  }
  test::TensorBytes& tensor(const std::string& name) {
    for (auto& t : tensors_) {
      if (t.name == name) return t;
    }
    throw std::runtime_error("no tensor " + name);
  }

  test::ScratchDir scratch_;
  std::vector<test::TensorBytes> tensors_;
  nlohmann::json card_;
};

TEST_F(BrokenModel, UnchangedLoads) { EXPECT_EQ(load_error(), ""); }

TEST_F(BrokenModel, RenamedTensor) {
  tensor("blocks.2.linear_1.weight").name = "blocks.2.linear_one.weight";
  EXPECT_NE(load_error().find("unexpected tensor 'blocks.2.linear_one.weight'"), std::string::npos);
}

TEST_F(BrokenModel, MissingTensor) {
  std::erase_if(tensors_, [](const test::TensorBytes& t) { return t.name == "norm_out.bias"; });
  EXPECT_NE(load_error().find("no tensor 'norm_out.bias'"), std::string::npos);
}

TEST_F(BrokenModel, ShapeDisagreesWithTheCard) {
  card_["hidden_dim"] = 128;
  EXPECT_NE(load_error().find("has shape [256, 128] but the model card implies [128, 128]"),
            std::string::npos);
  card_["hidden_dim"] = 256;
  card_["num_blocks"] = 5;
  EXPECT_NE(load_error().find("no tensor 'blocks.4.norm.weight'"), std::string::npos);
  card_["num_blocks"] = 4;
  card_["num_classes"] = 9;
  card_["null_label"] = 9;
  card_["class_names"] = std::vector<std::string>(9, "x");
  EXPECT_NE(load_error().find("'class_embedding.weight' has shape [11, 256] but the model card implies [10, 256]"),
            std::string::npos);
}

TEST_F(BrokenModel, NonFiniteWeight) {
  tensor("blocks.1.linear_2.weight").values[77] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(load_error().find("'blocks.1.linear_2.weight' has a non-finite value at index 77"),
            std::string::npos);
  tensor("blocks.1.linear_2.weight").values[77] = 0.0f;
  tensor("input_proj.bias").values[0] = std::numeric_limits<float>::infinity();
  EXPECT_NE(load_error().find("'input_proj.bias' has a non-finite value at index 0"), std::string::npos);
}

TEST_F(BrokenModel, CardMissingKeys) {
  for (const char* key : {"prediction_type", "hidden_dim", "scheduler", "time_embedding", "null_label"}) {
    nlohmann::json saved = card_[key];
    card_.erase(key);
    EXPECT_NE(load_error().find(std::string("model card has no \"") + key + "\""), std::string::npos) << key;
    card_[key] = saved;
  }
  card_["scheduler"].erase("beta_end");
  EXPECT_NE(load_error().find("model card has no \"scheduler.beta_end\""), std::string::npos);
}

TEST_F(BrokenModel, CardWithWrongValues) {
  card_["prediction_type"] = "flow";
  EXPECT_NE(load_error().find("unknown prediction type 'flow'"), std::string::npos);
  card_["prediction_type"] = "epsilon";
  EXPECT_NE(load_error().find("differs from scheduler.prediction_type"), std::string::npos);
  card_["prediction_type"] = "v_prediction";
  card_["architecture"] = "unet";
  EXPECT_NE(load_error().find("\"architecture\" is 'unet'"), std::string::npos);
  card_["architecture"] = "mlp_denoiser";
  card_["null_label"] = 3;
  EXPECT_NE(load_error().find("\"null_label\" must equal num_classes (10)"), std::string::npos);
  card_["null_label"] = 10;
  card_["data_dim"] = "64";
  EXPECT_NE(load_error().find("\"data_dim\" must be an integer"), std::string::npos);
  card_["data_dim"] = 64;
  card_["scheduler"]["num_train_timesteps"] = 1 << 24;
  EXPECT_NE(load_error().find("need condition tables over 1 GiB"), std::string::npos);
}

// Values kept as float32 must be finite there, and the picture's two ends
// must stay apart (pixel_scale 1e308 failed later, as "white and black must differ").
TEST_F(BrokenModel, CardNormalizationOutsideFloat32) {
  card_["normalization"]["pixel_scale"] = 1e308;
  EXPECT_NE(load_error().find("model card \"normalization.pixel_scale\" is 1e+308; expected a "
                              "number of magnitude <= 3.4e38"),
            std::string::npos)
      << load_error();
  card_["normalization"]["pixel_scale"] = 1e38;
  EXPECT_NE(load_error().find("model card \"normalization\" maps pixel_min 0 and pixel_max 16 to "
                              "model values -1 and -1; expected two different finite values"),
            std::string::npos)
      << load_error();
  card_["normalization"]["pixel_scale"] = 0;
  EXPECT_NE(load_error().find("expected two different finite values"), std::string::npos);
}

TEST_F(BrokenModel, CardWithTextAfterANulByte) {
  using namespace std::literals;
  const std::map<std::string, std::string> trailing{
      {kModelCardKey, card_.dump() + std::string("\0garbage"sv)}};
  EXPECT_NE(load_error(&trailing).find("model card is not valid JSON at byte " +
                                       std::to_string(card_.dump().size()) + ": a NUL byte"),
            std::string::npos)
      << load_error(&trailing);
}

TEST_F(BrokenModel, NoCardOrNotACard) {
  const std::map<std::string, std::string> none{{"format", "pt"}};
  EXPECT_NE(load_error(&none).find("no model card"), std::string::npos);
  const std::map<std::string, std::string> garbage{{kModelCardKey, "{not json"}};
  EXPECT_NE(load_error(&garbage).find("model card is not valid JSON"), std::string::npos);
}

TEST_F(BrokenModel, WrongFileTypeOrTruncated) {
  const std::string path = (scratch_ / "model.safetensors");
  const auto bytes = test::safetensors_bytes(tensors_, {{kModelCardKey, card_.dump()}});
  test::write_bytes(path, std::vector<std::byte>(bytes.begin(), bytes.end() - 100));
  EXPECT_NE(error_of([&] { MlpPredictor p(path); }).find("truncated"), std::string::npos);
  test::write_bytes(path, std::vector<std::byte>(bytes.begin(), bytes.begin() + 4));
  EXPECT_NE(error_of([&] { MlpPredictor p(path); }).find("not a safetensors file"), std::string::npos);
}

}  // namespace
}  // namespace ddpm

namespace ddpm {
namespace {

// ddpm::load_model: the card's architecture picks the network; the
// architecture-neutral card is what the front ends read.
TEST(LoadModel, CreatesTheNetworkTheCardNames) {
  const std::unique_ptr<NetworkPredictor> model = load_model(kModel, {.threads = 1});
  const auto* mlp = dynamic_cast<const MlpPredictor*>(model.get());
  ASSERT_NE(mlp, nullptr);
  const ModelCard& card = model->model_card();
  EXPECT_EQ(card.architecture, "mlp_denoiser");
  EXPECT_EQ(card.sample_shape, mlp->card().data_shape);
  EXPECT_EQ(card.dim(), mlp->data_dim());
  EXPECT_EQ(card.num_classes, mlp->num_classes());
  EXPECT_EQ(card.null_label, mlp->null_label());
  EXPECT_EQ(card.prediction_type, mlp->prediction_type());
  const SchedulerConfig a = card.recommended_config(), b = mlp->card().recommended_config();
  EXPECT_EQ(a.options.sampler, b.options.sampler);
  EXPECT_EQ(a.options.num_inference_steps, b.options.num_inference_steps);
  EXPECT_EQ(a.options.timestep_spacing, b.options.timestep_spacing);
  EXPECT_EQ(a.schedule.steps, b.schedule.steps);
  EXPECT_EQ(known_architectures(), "mlp_denoiser, UNet2DModel (a diffusers folder)");
}

TEST_F(BrokenModel, AnUnknownArchitectureIsNamedByLoadModel) {
  card_["architecture"] = "unet_2d";
  const std::string path = scratch_ / "unet.safetensors";
  test::write_bytes(path, test::safetensors_bytes(tensors_, {{kModelCardKey, card_.dump()}}));
  const std::string message = error_of([&] { load_model(path); });
  EXPECT_EQ(message, path + ": model card architecture 'unet_2d' is not one ddpm can load (mlp_denoiser, UNet2DModel (a diffusers folder))");
  test::write_bytes(path, test::safetensors_bytes(tensors_, {}));
  EXPECT_NE(error_of([&] { load_model(path); }).find("no model card"), std::string::npos);
  card_.erase("architecture");
  test::write_bytes(path, test::safetensors_bytes(tensors_, {{kModelCardKey, card_.dump()}}));
  EXPECT_NE(error_of([&] { load_model(path); }).find("\"architecture\""), std::string::npos);
}

}  // namespace
}  // namespace ddpm
