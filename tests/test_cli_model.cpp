// `ddpm sample --model` end to end with the committed digits model, the
// guidance and unconditional-prior flags of every predictor, --karras-sigmas,
// `ddpm schedule`'s solver columns and the --png figure: the samples are
// checked with the committed digit classifier (what was asked for must be
// what comes out), the figure by its size, and every kind of bad input by
// its one line, exit status and the absence of any output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "ddpm/mlp_predictor.h"
#include "digit_classifier.h"
#include "safetensors_bytes.h"

namespace ddpm {
namespace {

using namespace test;

const std::string kModel = source_file("models/digits.safetensors");

std::vector<std::int32_t> cycling(int n) {
  std::vector<std::int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(i % 10);
  return labels;
}

class CliModel : public CliTest {
 protected:
  // Runs `ddpm sample --model <digits> ...` on the CPU, expects success, and
  // returns the summary line.
  std::string sample(std::vector<std::string> args) const {
    std::vector<std::string> all{"sample", "--model", kModel, "--backend", "cpu", "--threads", "2"};
    all.insert(all.end(), args.begin(), args.end());
    const RunResult r = run(all);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(count_lines(r.out), 1) << r.out;
    return r.out;
  }
  std::vector<float> samples(const std::string& name) const { return read_npy(path(name)).data; }

  DigitClassifier classifier_;
};

// ---------------------------------------------------------------------------
// What was asked for is what comes out

TEST_F(CliModel, ClassAllCyclesTheClassesAndDrawsALabelledGrid) {
  const std::string summary = sample({"--class", "all", "--shape", "50,64", "--seed", "3", "--out",
                                      "@s.npy", "--png", "@grid.png"});
  // The card's recommended sampler and guidance, said in the summary.
  EXPECT_NE(summary.find("model digits.safetensors, sampler ddim, 50 of T=1000 steps (trailing), "
                         "classes 0..9 in turn, guidance 3"),
            std::string::npos)
      << summary;
  const NpyArray s = read_npy(path("s.npy"));
  EXPECT_EQ(s.shape, (std::vector<std::int64_t>{50, 64}));
  // diffusers measured 100% for this sampler (models/digits_metrics.json);
  // a wrong label order or guidance sign lands near 10%.
  EXPECT_GE(share_classified_as(classifier_, s.data, cycling(50)), 0.9);

  // 5 rows of 10 digits, 8x8 drawn 5x (40 px), 4 px gaps; under two title
  // lines (10 px each, then 4 px) each row is 40 px of digits, 2 px, a
  // 10 px caption line (the class) and 4 px: 4 + 24 + 5 * 56 pixels high.
  const PngHeader png = png_header(read_file(path("grid.png")));
  EXPECT_EQ(png.width, 10u * 40u + 11u * 4u);
  EXPECT_EQ(png.height, 4u + 24u + 5u * 56u);
  EXPECT_EQ(listing(), (std::vector<std::string>{"grid.png", "s.npy"}));
}

TEST_F(CliModel, PerSampleClassListIsReadInOrder) {
  const std::vector<std::int32_t> asked{3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
  sample({"--class", "3,1,4,1,5,9,2,6,5,3", "--shape", "10,64", "--out", "@s.npy"});
  EXPECT_GE(share_classified_as(classifier_, samples("s.npy"), asked), 0.9);
}

TEST_F(CliModel, OneClassForEverySampleKeepsTheGivenShape) {
  sample({"--class", "7", "--shape", "10,8,8", "--out", "@s.npy"});
  const NpyArray s = read_npy(path("s.npy"));
  EXPECT_EQ(s.shape, (std::vector<std::int64_t>{10, 8, 8}));
  EXPECT_GE(share_classified_as(classifier_, s.data, std::vector<std::int32_t>(10, 7)), 0.9);
}

// Karras sigmas call the network at fractional timesteps: the digits must
// still be the asked ones (a rounded or garbled time embedding is not).
TEST_F(CliModel, EulerAndDpmSolverWithKarrasSigmasGiveTheAskedDigits) {
  for (const char* sampler : {"euler", "dpmpp_2m"}) {
    const std::string summary =
        sample({"--sampler", sampler, "--karras-sigmas", "--inference-steps", "20", "--class",
                "all", "--shape", "30,64", "--out", "@s.npy"});
    EXPECT_NE(summary.find(std::string("sampler ") + sampler + ", 20 of T=1000 steps"),
              std::string::npos)
        << summary;
    EXPECT_NE(summary.find("Karras sigmas"), std::string::npos) << summary;
    EXPECT_GE(share_classified_as(classifier_, samples("s.npy"), cycling(30)), 0.9) << sampler;
  }
}

TEST_F(CliModel, GuidanceDefaultsToTheCardsWithAClassAndOneWithout) {
  sample({"--class", "2", "--shape", "4,64", "--out", "@default.npy"});
  sample({"--class", "2", "--shape", "4,64", "--guidance-scale", "3", "--out", "@three.npy"});
  const std::string one =
      sample({"--class", "2", "--shape", "4,64", "--guidance-scale", "1", "--out", "@one.npy"});
  EXPECT_EQ(read_file(path("default.npy")), read_file(path("three.npy")));
  EXPECT_NE(read_file(path("default.npy")), read_file(path("one.npy")));
  EXPECT_EQ(one.find("guidance"), std::string::npos) << one;
  // Without a class every sample is unconditional: no guidance.
  const std::string none = sample({"--shape", "4,64", "--out", "@none.npy"});
  EXPECT_EQ(none.find("guidance"), std::string::npos) << none;
}

TEST_F(CliModel, UnconditionalSamplesCoverEveryDigit) {
  sample({"--shape", "100,64", "--seed", "1", "--out", "@s.npy"});
  const std::vector<float> s = samples("s.npy");
  std::vector<int> histogram(10, 0);
  for (int r = 0; r < 100; ++r)
    ++histogram[static_cast<std::size_t>(classifier_.classify(s.data() + r * 64))];
  // diffusers' histogram of 1,000 was 86..116 per digit: 100 draws give about
  // 10 each, and a collapse onto a few digits (a label stuck) leaves most at 0.
  for (int c = 0; c < 10; ++c)
    EXPECT_GE(histogram[static_cast<std::size_t>(c)], 3) << "digit " << c;
}

TEST_F(CliModel, FlagsOverrideTheCardsDefaults) {
  const std::string summary = sample({"--shape", "2,64", "--inference-steps", "10",
                                      "--timestep-spacing", "leading", "--out", "@s.npy"});
  EXPECT_NE(summary.find("sampler ddim, 10 of T=1000 steps (leading)"), std::string::npos)
      << summary;
  // The card's prediction type stays; another one is refused by the model.
  const RunResult r = run({"sample", "--model", kModel, "--shape", "2,64", "--prediction-type",
                           "epsilon", "--backend", "cpu", "--out", "@e.npy"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the model predicts v_prediction"), std::string::npos) << r.err;
}

TEST_F(CliModel, GuidanceRescaleChangesTheSamples) {
  sample({"--class", "4", "--shape", "4,64", "--out", "@plain.npy"});
  sample(
      {"--class", "4", "--shape", "4,64", "--guidance-rescale", "0.7", "--out", "@rescaled.npy"});
  EXPECT_NE(read_file(path("plain.npy")), read_file(path("rescaled.npy")));
}

// ---------------------------------------------------------------------------
// Guidance with the built-in priors

// With equal stds, guidance w samples N(m_u + w (m_c - m_u), s^2) (issue 11's exact answer).
TEST_F(CliTest, GaussianGuidanceShiftsTheMeanByTheScale) {
  for (const auto& [w, expected] :
       {std::pair{"2", 2.0}, std::pair{"0", 0.0}, std::pair{"0.5", 0.5}}) {
    const RunResult r = run({"sample", "--mean", "1", "--std", "0.5", "--uncond-mean", "0",
                             "--guidance-scale", w, "--shape", "2000,4", "--steps", "100",
                             "--beta-end", "0.2", "--backend", "cpu", "--out", "@s.npy"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<float> s = read_npy(path("s.npy")).data;
    double sum = 0.0, squares = 0.0;
    for (float v : s) sum += v;
    const double mean = sum / static_cast<double>(s.size());
    for (float v : s) squares += (v - mean) * (v - mean);
    // 8000 draws of sd 0.5: the mean's sd is 0.0056, so 0.03 is over 5 sd.
    EXPECT_NEAR(mean, expected, 0.03) << "w = " << w;
    EXPECT_NEAR(std::sqrt(squares / static_cast<double>(s.size())), 0.5, 0.03) << "w = " << w;
  }
}

TEST_F(CliTest, MixtureGuidanceAtZeroSamplesTheUnconditionalMixture) {
  std::ofstream(path("right.json")) << R"({"weights": [1], "means": [[3, 3]], "stds": [0.3]})";
  std::ofstream(path("left.json")) << R"({"weights": [1], "means": [[-3, -3]], "stds": [0.3]})";
  const RunResult r = run({"sample", "--predictor", "gmm", "--gmm", "@right.json", "--uncond-gmm",
                           "@left.json", "--guidance-scale", "0", "--shape", "200,2", "--steps",
                           "100", "--beta-end", "0.2", "--backend", "cpu", "--out", "@s.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  double sum = 0.0;
  for (float v : read_npy(path("s.npy")).data) sum += v;
  EXPECT_NEAR(sum / 400.0, -3.0, 0.1);
}

TEST_F(CliTest, UnconditionalPriorWithoutGuidanceIsWarnedAbout) {
  const RunResult r = run({"sample", "--mean", "1", "--uncond-mean", "0", "--shape", "4,2",
                           "--steps", "20", "--backend", "cpu", "--out", "@s.npy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err,
            "ddpm: warning: --uncond-mean/--uncond-std has no effect without --guidance-scale\n");
}

// ---------------------------------------------------------------------------
// ddpm schedule: the solver columns after the first 13

TEST_F(CliTest, ScheduleShowsWhatASolverPlanGivesTheModel) {
  const RunResult r = run({"schedule", "--model", kModel, "--sampler", "euler", "--karras-sigmas",
                           "--inference-steps", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header;
  std::getline(lines, header);
  EXPECT_EQ(
      header,
      "timestep,prev_timestep,beta,alpha_bar,alpha_bar_prev,x0_from_sample,x0_from_model_output,"
      "eps_from_sample,eps_from_model_output,prev_from_x0,prev_from_eps,prev_from_sample,sigma,"
      "model_timestep,solver_sigma,prev_from_x0_prev,order,prev_from_x0_prev2,prev_from_last_sample,"
      "corrects,corrected_from_last_sample,corrected_from_x0,corrected_from_x0_prev,"
      "corrected_from_x0_prev2,corrected_from_x0_prev3,stage");
  int rows = 0, fractional = 0;
  for (std::string line; std::getline(lines, line); ++rows) {
    std::vector<double> v;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) v.push_back(std::stod(cell));
    ASSERT_EQ(v.size(), 26u) << line;
    // The model's time rounds to the step; solver_sigma is sqrt((1 - ab) / ab).
    EXPECT_NEAR(v[13], v[0], 0.5) << line;
    fractional += v[13] != std::floor(v[13]);
    EXPECT_NEAR(v[14], std::sqrt((1.0 - v[3]) / v[3]), 1e-9 * v[14]) << line;
    EXPECT_EQ(v[16], 1.0) << line;  // Euler is first order
  }
  EXPECT_EQ(rows, 10);
  EXPECT_GE(fractional, 5) << "Karras sigmas fall between timesteps";

  // DPM-Solver++(2M): second order between the first and last steps, as .npy.
  const RunResult npy =
      run({"schedule", "--sampler", "dpmpp_2m", "--inference-steps", "6", "--out", "@plan.npy"});
  ASSERT_EQ(npy.exit_code, 0) << npy.err;
  const NpyArrayDouble plan = read_npy_double(path("plan.npy"));
  ASSERT_EQ(plan.shape, (std::vector<std::int64_t>{6, 26}));
  for (int i = 0; i < 6; ++i) {
    const double order = plan.data[static_cast<std::size_t>(i * 26 + 16)];
    const double x0_prev = plan.data[static_cast<std::size_t>(i * 26 + 15)];
    EXPECT_EQ(order, i == 0 || i == 5 ? 1.0 : 2.0) << "step " << i;
    EXPECT_EQ(x0_prev != 0.0, order == 2.0) << "step " << i;
  }

  // Heun: one row per model call (2n - 1), stages 1 and 2 alternating, the
  // second reading the first's sample; UniPC: its corrector from the second step on.
  const RunResult heun = run({"schedule", "--sampler", "heun", "--inference-steps", "4", "--out", "@heun.npy"});
  ASSERT_EQ(heun.exit_code, 0) << heun.err;
  const NpyArrayDouble heun_plan = read_npy_double(path("heun.npy"));
  ASSERT_EQ(heun_plan.shape, (std::vector<std::int64_t>{7, 26}));
  for (int i = 0; i < 7; ++i) {
    const double* row = heun_plan.data.data() + i * 26;
    EXPECT_EQ(row[25], i % 2 == 0 ? 1.0 : 2.0) << "row " << i;
    EXPECT_EQ(row[18] != 0.0, i % 2 == 1) << "row " << i;  // prev_from_last_sample
  }
  const RunResult unipc = run({"schedule", "--sampler", "unipc", "--solver-order", "3", "--inference-steps", "5"});
  ASSERT_EQ(unipc.exit_code, 0) << unipc.err;
  std::istringstream unipc_lines(unipc.out);
  std::getline(unipc_lines, header);
  int row = 0;
  for (std::string line; std::getline(unipc_lines, line); ++row) {
    std::vector<double> v;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) v.push_back(std::stod(cell));
    ASSERT_EQ(v.size(), 26u) << line;
    EXPECT_EQ(v[19], row == 0 ? 0.0 : 1.0) << line;                        // corrects
    EXPECT_EQ(v[16], std::min({3, row + 1, 5 - row})) << line;           // the predictor's order
  }
  EXPECT_EQ(row, 5);
}

// ---------------------------------------------------------------------------
// Bad input: one line, the right status, no output

// "@model" in a case's arguments names the digits model.
class CliModelErrors : public CliTest, public ::testing::WithParamInterface<ErrorCase> {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const std::string model = read_file(kModel);
    test::write_bytes(path("notes.safetensors"),
                      std::vector<std::byte>{std::byte{'h'}, std::byte{'i'}});
    std::ofstream(path("truncated.safetensors"), std::ios::binary)
        << model.substr(0, model.size() / 2);
    // The same network without classes (no class embedding, no null label),
    // and one whose samples are not pictures (data_shape [64]).
    const auto file = detail::SafetensorsFile::open(kModel);
    nlohmann::json card = nlohmann::json::parse(file.metadata().at(kModelCardKey));
    std::vector<TensorBytes> tensors = tensors_of(file);
    nlohmann::json flat = card;
    flat["data_shape"] = {64};
    test::write_bytes(path("flat.safetensors"),
                      safetensors_bytes(tensors, {{kModelCardKey, flat.dump()}}));
    std::erase_if(tensors, [](const TensorBytes& t) { return t.name == "class_embedding.weight"; });
    card["num_classes"] = 0;
    card["null_label"] = -1;
    card.erase("class_names");
    test::write_bytes(path("unconditional.safetensors"),
                      safetensors_bytes(tensors, {{kModelCardKey, card.dump()}}));
    std::ofstream(path("gmm.json")) << R"({"weights": [1], "means": [[0, 0]], "stds": [1]})";
    inputs_ = listing();
  }
  std::vector<std::string> inputs_;
};

TEST_P(CliModelErrors, OneLineNoOutput) {
  std::vector<std::string> args;
  for (const std::string& a : GetParam().args) args.push_back(a == "@model" ? kModel : a);
  for (const char* a : {"--backend", "cpu", "--out", "@out.npy"}) args.push_back(a);
  expect_error(run(args), GetParam());
  EXPECT_EQ(listing(), inputs_);
}

TEST_F(CliModel, ScheduleTableRefusesAnotherScheduleThanTheModels) {
  const RunResult r = run({"schedule", "--model", kModel, "--schedule", "sigmoid"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("was trained with a linear schedule (T = 1000"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

std::vector<ErrorCase> model_error_cases() {
  return {
      {"not_safetensors",
       {"sample", "--model", "@notes.safetensors", "--shape", "4,64"},
       "not a safetensors file"},
      {"truncated",
       {"sample", "--model", "@truncated.safetensors", "--shape", "4,64"},
       "truncated"},
      {"missing_model",
       {"sample", "--model", "@absent.safetensors", "--shape", "4,64"},
       "No such file or directory"},
      {"shape_dim",
       {"sample", "--model", "@model", "--shape", "4,63"},
       "shape mismatch: --shape 4,63 gives samples of 63 elements but the model"},
      {"class_is_the_null_label",
       {"sample", "--model", "@model", "--shape", "4,64", "--class", "10"},
       "--class 10 is outside the model's classes 0..9"},
      {"class_out_of_range_in_a_list",
       {"sample", "--model", "@model", "--shape", "3,64", "--class", "1,2,12"},
       "--class 12 is outside the model's classes 0..9"},
      {"class_list_length",
       {"sample", "--model", "@model", "--shape", "4,64", "--class", "1,2"},
       "--class gives 2 labels but the batch has 4 samples"},
      {"class_negative",
       {"sample", "--model", "@model", "--shape", "4,64", "--class", "-1"},
       "is not a class",
       kUsage},
      {"class_gap",
       {"sample", "--model", "@model", "--shape", "4,64", "--class", "1,,2"},
       "is not a class",
       kUsage},
      {"class_on_unconditional_model",
       {"sample", "--model", "@unconditional.safetensors", "--shape", "4,64", "--class", "1"},
       "is unconditional"},
      {"guidance_on_unconditional_model",
       {"sample", "--model", "@unconditional.safetensors", "--shape", "4,64", "--guidance-scale",
        "2"},
       "has no null label"},
      {"guidance_without_class",
       {"sample", "--model", "@model", "--shape", "4,64", "--guidance-scale", "2"},
       "--guidance-scale needs --class with --model",
       kUsage},
      {"guidance_on_gaussian_without_unconditional",
       {"sample", "--shape", "4,2", "--guidance-scale", "2"},
       "--guidance-scale needs an unconditional prior: give --uncond-mean",
       kUsage},
      {"guidance_on_gmm_without_unconditional",
       {"sample", "--predictor", "gmm", "--gmm", "@gmm.json", "--shape", "4,2", "--guidance-scale",
        "2"},
       "needs an unconditional mixture: give --uncond-gmm",
       kUsage},
      {"negative_guidance_rescale",
       {"sample", "--model", "@model", "--shape", "4,64", "--class", "1", "--guidance-rescale",
        "-0.1"},
       "--guidance-rescale: '-0.1' is negative",
       kUsage},
      {"rescale_without_guidance",
       {"sample", "--shape", "4,2", "--uncond-mean", "1", "--guidance-rescale", "0.5"},
       "--guidance-rescale needs a --guidance-scale other than 1",
       kUsage},
      {"guidance_not_a_number",
       {"sample", "--shape", "4,2", "--guidance-scale", "nan"},
       "--guidance-scale: 'nan' is not a finite number",
       kUsage},
      {"class_with_gaussian",
       {"sample", "--shape", "4,2", "--class", "3"},
       "--class applies only to a class-conditional --model",
       kUsage},
      {"gaussian_flag_with_model",
       {"sample", "--model", "@model", "--shape", "4,64", "--std", "2"},
       "--std does not apply to --model",
       kUsage},
      {"predictor_with_model",
       {"sample", "--model", "@model", "--predictor", "gmm", "--shape", "4,64"},
       "excludes",
       kUsage},
      {"uncond_gmm_with_gaussian",
       {"sample", "--shape", "4,2", "--uncond-gmm", "@gmm.json"},
       "--uncond-gmm applies only to --predictor gmm",
       kUsage},
      {"uncond_mean_with_gmm",
       {"sample", "--predictor", "gmm", "--gmm", "@gmm.json", "--shape", "4,2", "--uncond-mean",
        "1"},
       "--uncond-mean applies only to --predictor gaussian",
       kUsage},
      {"png_of_samples_that_are_not_pictures",
       {"sample", "--shape", "4,2", "--png", "@out.png"},
       "--png: --shape 4,2: an image array is [C, H, W] or [N, C, H, W], not [4, 2]"},
      {"png_of_a_model_without_pictures",
       {"sample", "--model", "@flat.safetensors", "--shape", "4,64", "--png", "@out.png"},
       "has samples of shape [64], not a picture"},
      {"karras_with_ddim",
       {"sample", "--model", "@model", "--shape", "4,64", "--karras-sigmas"},
       "--karras-sigmas applies only to --sampler dpmpp_2m, dpmpp_2m_sde, euler, heun, dpmpp_3m, unipc, not ddim",
       kUsage},
      {"karras_with_ddpm",
       {"sample", "--shape", "4,2", "--sampler", "ddpm", "--karras-sigmas"},
       "not ddpm",
       kUsage},
      {"model_schedule_mismatch",
       {"sample", "--model", "@model", "--shape", "4,64", "--steps", "500"},
       "was trained with a linear schedule (T = 1000, beta 0.0001 to 0.02); the schedule flags "
       "give another (T = 500"},
      // Same T, other noise levels: the network would be asked about levels it never saw.
      {"model_other_schedule_kind",
       {"sample", "--model", "@model", "--shape", "4,64", "--schedule", "cosine"},
       "the schedule flags give another (T = 1000, beta 4.12842e-05 to 0.999)"},
      {"model_other_beta_end",
       {"sample", "--model", "@model", "--shape", "4,64", "--beta-end", "0.03"},
       "give another (T = 1000, beta 0.0001 to 0.03): leave --schedule"},

  };
}

INSTANTIATE_TEST_SUITE_P(BadInput, CliModelErrors, ::testing::ValuesIn(model_error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) {
                           return info.param.label;
                         });

}  // namespace
}  // namespace ddpm
