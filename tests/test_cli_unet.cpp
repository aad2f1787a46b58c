// The CLI with diffusers UNet2DModel folders: `ddpm sample --model FOLDER`
// (a pipeline's scheduler as the defaults, --shape N alone, --png grids of 1
// and 3 channels), `ddpm unet-eval` against diffusers' outputs, and every
// refusal as one line with nothing written.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cli_fixture.h"
#include "digit_classifier.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace ddpm {
namespace {

using namespace test;

const std::string kUNets = std::string(DDPM_TEST_DATA_DIR) + "/diffusers/unet/";
const std::string kDigitsUNet = source_file("models/digits-unet");

// A pipeline folder: its DDPMScheduler's defaults, N samples of the config's
// [3, 16, 16], and a grid of RGB pictures.
TEST_F(CliTest, SamplesAPipelineFolderWithItsScheduler) {
  const RunResult r = run({"sample", "--model", kUNets + "pipeline", "--shape", "3", "--sampler", "ddim",
                           "--inference-steps", "4", "--backend", "cpu", "--out", "@s.npy", "--png", "@s.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("model pipeline, sampler ddim, 4 of T=1000 steps"), std::string::npos) << r.out;
  const NpyArray s = read_npy(path("s.npy"));
  EXPECT_EQ(s.shape, (std::vector<std::int64_t>{3, 3, 16, 16}));
  for (float v : s.data) ASSERT_TRUE(std::isfinite(v));
  const PngHeader png = png_header(read_file(path("s.png")));
  EXPECT_EQ(png.colour_type, 2);
  EXPECT_GT(png.width, 3u * 16u);
}

// The trained digits U-Net, guided, through the CLI: its 16x16 samples,
// averaged down to 8x8, are the digits asked for by the digits classifier
// (the two models share the pixel scale: x = pixel / 8 - 1).
TEST_F(CliTest, DigitsUNetDrawsTheAskedClasses) {
  const RunResult r = run({"sample", "--model", kDigitsUNet, "--shape", "20", "--class", "all", "--sampler", "ddim",
                           "--inference-steps", "20", "--guidance-scale", "2", "--backend", "cpu", "--threads", "2",
                           "--out", "@d.npy", "--png", "@d.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const NpyArray d = read_npy(path("d.npy"));
  ASSERT_EQ(d.shape, (std::vector<std::int64_t>{20, 1, 16, 16}));
  std::vector<float> small(20 * 64);
  std::vector<std::int32_t> labels;
  for (int n = 0; n < 20; ++n) {
    labels.push_back(n % 10);
    for (int y = 0; y < 8; ++y) {
      for (int x = 0; x < 8; ++x) {
        const float* p = d.data.data() + n * 256 + 2 * y * 16 + 2 * x;
        small[n * 64 + y * 8 + x] = 0.25f * (p[0] + p[1] + p[16] + p[17]);
      }
    }
  }
  const DigitClassifier classifier;
  EXPECT_GE(share_classified_as(classifier, small, labels), 0.9);
  EXPECT_GT(png_header(read_file(path("d.png"))).width, 0u);
}

// unet-eval is diffusers' UNet2DModel(x, t).sample.
TEST_F(CliTest, UNetEvalEqualsDiffusers) {
  const detail::SafetensorsFile cases = detail::SafetensorsFile::open(kUNets + "heads_no_mid_attention/cases.safetensors");
  const auto& sample = cases.at("case_5.sample");
  write_array("x.npy", sample.shape, sample.to_floats());
  const RunResult r = run({"unet-eval", "--model", kUNets + "heads_no_mid_attention", "--input", "@x.npy",
                           "--timestep", "500,250", "--out", "@y.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const NpyArray y = read_npy(path("y.npy"));
  const auto& expected = cases.at("case_5.output");
  EXPECT_EQ(y.shape, expected.shape);
  std::vector<double> reference;
  for (float v : expected.to_floats()) reference.push_back(v);
  EXPECT_TRUE(close_relative_to_max(y.data, reference, 1e-4));
}

struct UNetError {
  std::vector<std::string> args;
  std::string expected;
  int exit_code = 1;
};

// --shape N stands for N samples of the model's shape beside --initial too,
// and a folder's config.json stands for the folder.
TEST_F(CliTest, ShapeNAloneMatchesAnInitialArrayAndConfigJsonNamesItsFolder) {
  write_array("x_T.npy", {2, 3, 8, 8}, std::vector<float>(2 * 3 * 8 * 8, 0.25f));
  const RunResult r = run({"sample", "--model", kUNets + "basic/config.json", "--shape", "2", "--initial", "@x_T.npy",
                           "--sampler", "ddim", "--inference-steps", "2", "--backend", "cpu", "--out", "@o.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_npy(path("o.npy")).shape, (std::vector<std::int64_t>{2, 3, 8, 8}));
  // A malformed --timestep is a usage error.
  write_array("x.npy", {1, 3, 8, 8}, std::vector<float>(3 * 8 * 8, 0.5f));
  EXPECT_EQ(run({"unet-eval", "--model", kUNets + "basic", "--input", "@x.npy", "--timestep", "abc", "--out",
                 "@y.npy"}).exit_code,
            2);
}

TEST_F(CliTest, UNetRefusalsAreOneLineAndWriteNothing) {
  const std::string pipeline = kUNets + "pipeline";
  const std::vector<UNetError> errors = {
      {{"sample", "--model", kUNets + "hostile/time_embedding_fourier", "--shape", "2", "--out", "@o.npy"},
       "config.json \"time_embedding_type\" is \"fourier\""},
      {{"sample", "--model", kUNets + "hostile/nan_weight", "--shape", "2", "--out", "@o.npy"},
       "tensor 'mid_block.resnets.0.conv1.weight' has a non-finite value"},
      {{"sample", "--model", kUNets + "hostile/missing_tensor", "--shape", "2", "--out", "@o.npy"},
       "missing tensor 'up_blocks.0.attentions.0.to_v.bias'"},
      {{"sample", "--model", kUNets + "basic", "--variant", "fp8", "--shape", "2", "--out", "@o.npy"},
       "no diffusion_pytorch_model.fp8.safetensors for --variant fp8"},
      {{"sample", "--model", pipeline, "--shape", "2,3,12,12", "--out", "@o.npy"}, "multiples of 8"},
      {{"sample", "--model", pipeline, "--shape", "2,1,16,16", "--out", "@o.npy"}, "has data_dim 768"},
      {{"sample", "--model", kUNets + "heads_no_mid_attention", "--shape", "2", "--out", "@o.npy"},
       "out_channels 5 differ from in_channels 3"},
      {{"sample", "--model", pipeline, "--shape", "2", "--precision", "fp16", "--backend", "cpu", "--out", "@o.npy"},
       "precision fp16 is for the CUDA backend"},
      {{"sample", "--model", pipeline, "--shape", "2", "--precision", "fp64", "--out", "@o.npy"}, "fp64", 2},
      {{"unet-eval", "--model", pipeline, "--input", "@missing.npy", "--timestep", "1", "--out", "@o.npy"},
       "missing.npy"},
      {{"sample", "--model", kUNets + "basic", "--variant", "a/b", "--shape", "2", "--out", "@o.npy"},
       "variant 'a/b' is not a weights variant name"},
  };
  for (const UNetError& e : errors) {
    const RunResult r = run(e.args);
    EXPECT_EQ(r.exit_code, e.exit_code) << e.expected << ": " << r.err;
    // A usage error adds the line that points at --help.
    EXPECT_EQ(count_lines(r.err), e.exit_code == 2 ? 2 : 1) << r.err;
    EXPECT_NE(r.err.find(e.expected), std::string::npos) << r.err;
    EXPECT_EQ(listing(), std::vector<std::string>{}) << e.expected;
  }
}

}  // namespace
}  // namespace ddpm
