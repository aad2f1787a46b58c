// Images on the command line: read wherever an array is read (by content),
// forward --png and --from-step, sample --png of image-shaped samples, ddpm
// illustrate, and bad image files refused with one line and nothing written.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "cli_fixture.h"
#include "ddpm/image.h"
#include "ddpm/npy.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "image_bytes.h"
#include "npy_bytes.h"
#include "test_support.h"

namespace ddpm {
namespace {

using namespace test;  // the CLI fixture and its helpers (cli_fixture.h)

std::string image_file(const std::string& name) {
  return source_file("tests/data/images/" + name);
}

// small.jpg: [1, 3, 30, 40], as ddpm reads it.
const std::vector<std::int64_t> kSmallShape{1, 3, 30, 40};

class CliImages : public CliTest {
 protected:
  // x_t of the library for small.jpg at step t with seed 5 (the CLI's --seed 5).
  static std::vector<float> library_forward(int t, bool one_step) {
    const ImageArray image = read_image(image_file("small.jpg"));
    Sampler sampler(Schedule::linear(), {.backend = Backend::cpu});
    std::vector<float> x_t = poisoned(image.data.size());
    const Shape shape{1, static_cast<std::int64_t>(image.data.size())};
    if (one_step) {
      sampler.forward_one_step({.x_prev = image.data, .shape = shape, .step = t, .noise = {5, 0}, .x_t = x_t});
    } else {
      sampler.forward({.x0 = image.data, .shape = shape, .step = t, .noise = {5, 0}, .x_t = x_t});
    }
    return x_t;
  }
};

// The CLI reads the JPEG as read_image does and noises it as Sampler::forward
// does, bit for bit; --png draws x_t with the pixels to_pixels gives.
TEST_F(CliImages, ForwardReadsAnImageAndDrawsTheResult) {
  run_ok({"forward", "--x0", image_file("small.jpg"), "--t", "300", "--seed", "5", "--backend",
          "cpu", "--out", "@x_t.npy", "--png", "@x_t.png"});
  const NpyArray x_t = read_npy(path("x_t.npy"));
  EXPECT_EQ(x_t.shape, kSmallShape);
  EXPECT_TRUE(bit_identical(x_t.data, library_forward(300, false)));
  const ImageArray drawn = read_image(path("x_t.png"));
  ASSERT_EQ(drawn.shape, kSmallShape);
  const std::vector<std::uint8_t> pixels = to_pixels(x_t.data, x_t.shape);
  for (std::size_t c = 0; c < 3; ++c) {
    for (std::size_t p = 0; p < 1200; ++p) {
      ASSERT_EQ(drawn.data[c * 1200 + p], 2.0f * (pixels[p * 3 + c] / 255.0f) - 1.0f) << c << ", " << p;
    }
  }
}

// The name does not matter: a PNG named .npy is read as a PNG.
TEST_F(CliImages, ImageIsToldByContentNotName) {
  write_bytes(path("picture.npy"), file_bytes(image_file("rgb8.png")));
  run_ok({"forward", "--x0", "@picture.npy", "--t", "10", "--out", "@x_t.npy"});
  EXPECT_EQ(read_npy(path("x_t.npy")).shape, (std::vector<std::int64_t>{1, 3, 7, 13}));
}

// --from-step draws q(x_t | x_{t-1}) as Sampler::forward_one_step does, and
// --noise-out is the noise it used: x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps.
TEST_F(CliImages, FromStepIsTheOneStepWithItsNoise) {
  run_ok({"forward", "--from-step", "--x0", image_file("small.jpg"), "--t", "300", "--seed", "5",
          "--backend", "cpu", "--out", "@x_t.npy", "--noise-out", "@eps.npy"});
  const NpyArray x_t = read_npy(path("x_t.npy"));
  EXPECT_TRUE(bit_identical(x_t.data, library_forward(300, true)));
  const NpyArray eps = read_npy(path("eps.npy"));
  const std::vector<float> x_prev = read_image(image_file("small.jpg")).data;
  const Schedule schedule = Schedule::linear();
  const double alpha = schedule.alpha_bar()[300] / schedule.alpha_bar()[299];
  std::vector<double> expected(x_prev.size());
  for (std::size_t i = 0; i < x_prev.size(); ++i) {
    expected[i] = std::sqrt(alpha) * x_prev[i] + std::sqrt(1.0 - alpha) * eps.data[i];
  }
  EXPECT_TRUE(close_relative_to_max(x_t.data, expected, 1e-6));
  // The noise is N(0, 1): 3,600 values, mean within 4 standard errors.
  expect_law(eps.data, 0.0, 1.0, "--noise-out");
}

// A chunked run reads the image whole and writes what one run writes.
TEST_F(CliImages, ChunkedForwardOfAnImageEqualsOneRun) {
  run_ok({"forward", "--x0", image_file("small.jpg"), "--t", "300", "--seed", "5", "--out", "@one.npy"});
  run_ok({"forward", "--x0", image_file("small.jpg"), "--t", "300", "--seed", "5", "--chunk-rows",
          "1", "--out", "@chunked.npy"});
  EXPECT_TRUE(bit_identical(read_npy(path("chunked.npy")).data, read_npy(path("one.npy")).data));
}

// The oracle on the command line: the photograph as the per-element mean,
// std 0; the samples are the photograph, drawn with sample --png.
TEST_F(CliImages, SampleWithAnImageAsThePriorMeanReturnsIt) {
  run_ok({"sample", "--predictor", "gaussian", "--mean-npy", image_file("small.jpg"), "--std", "0",
          "--shape", "2,3,30,40", "--steps", "100", "--seed", "3", "--out", "@x.npy", "--png",
          "@x.png"});
  const NpyArray x = read_npy(path("x.npy"));
  const std::vector<float> image = read_image(image_file("small.jpg")).data;
  std::vector<double> both;
  for (int copy = 0; copy < 2; ++copy) both.insert(both.end(), image.begin(), image.end());
  EXPECT_TRUE(close_relative_to_max(x.data, both, 4 * 0x1p-24));
  // Two images side by side with a 2-pixel gap.
  EXPECT_EQ(read_image(path("x.png")).shape, (std::vector<std::int64_t>{1, 3, 30, 2 * 40 + 2}));
}

// --initial may be an image too (SDEdit from a photograph).
TEST_F(CliImages, SampleStartsFromAnImage) {
  const RunResult r = run({"sample", "--initial", image_file("rgb8.png"), "--start-step", "20",
                           "--steps", "100", "--out", "@x.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_npy(path("x.npy")).shape, (std::vector<std::int64_t>{1, 3, 7, 13}));
}

TEST_F(CliImages, AlphaIsDroppedWithAWarning) {
  const RunResult r = run({"forward", "--x0", image_file("rgba8.png"), "--t", "3", "--out", "@x.npy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("ddpm: warning: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("alpha channel was dropped"), std::string::npos) << r.err;
  EXPECT_EQ(read_npy(path("x.npy")).shape, (std::vector<std::int64_t>{1, 3, 9, 5}));
}

// Six panels, the l1 figures on stdout, each one of them small where it must be.
TEST_F(CliImages, IllustrateDrawsThePanelsAndPrintsL1) {
  const RunResult r = run({"illustrate", "--image", image_file("small.jpg"), "--steps", "100",
                           "--rows", "3", "--samples", "2", "--t", "20", "--seed", "1", "--out",
                           "@figure.png"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const PngHeader header = png_header(read_file(path("figure.png")));
  EXPECT_GT(header.width, 4u * 40u);
  EXPECT_GT(header.height, 8u * 30u);  // 3 + 3 + 1 + 1 + 1 + 1 rows of pictures
  // (d): x0 from x_t and the true eps, (e): the two means, (f): the oracle.
  for (const std::string line :
       {"(d) t = 20: l1(x_t, x0) = ", "(e) t = 20: l1(posterior mean from eps, true mean of step t-1) = ",
        "(f) l1(oracle reverse run, x0) = "}) {
    const std::size_t at = r.out.find(line);
    ASSERT_NE(at, std::string::npos) << r.out;
  }
  const auto value_after = [&](const std::string& text) {
    const std::size_t at = r.out.find(text);
    return at == std::string::npos ? -1.0 : std::strtod(r.out.c_str() + at + text.size(), nullptr);
  };
  EXPECT_GT(value_after("l1(x_t, x0) = "), 0.01);  // x_t is noisy at t = 20
  EXPECT_LT(value_after("l1(x0 from x_t and eps, x0) = "), 1e-6);
  EXPECT_LT(value_after("true mean of step t-1) = "), 1e-6);
  EXPECT_LT(value_after("l1(oracle reverse run, x0) = "), 1e-6);
  EXPECT_NE(r.out.find("wrote "), std::string::npos);

  const RunResult panels = run({"illustrate", "--image", image_file("grey.jpg"), "--steps", "50",
                                "--t", "10", "--panels", "--out", "@fig.png"});
  ASSERT_EQ(panels.exit_code, 0) << panels.err;
  EXPECT_EQ(listing(), (std::vector<std::string>{"fig-a.png", "fig-b.png", "fig-c.png", "fig-d.png",
                                                 "fig-e.png", "fig-f.png", "figure.png"}));
}

// ---------------------------------------------------------------------------
// Bad images and flags: one line, non-zero exit, nothing written.

class CliImageErrors : public CliTest, public ::testing::WithParamInterface<ErrorCase> {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    const std::string png = file_bytes(image_file("rgb8.png"));
    const std::string jpeg = file_bytes(image_file("small.jpg"));
    write_bytes(path("truncated.png"), png.substr(0, png.size() / 2));
    write_bytes(path("truncated.jpg"), jpeg.substr(0, jpeg.size() / 2));
    write_bytes(path("text.png"), "not a picture\n");
    write_bytes(path("huge.png"), png_declaring(100000, 100000));
    write_bytes(path("zero.png"), png_declaring(0, 64));
    write_bytes(path("rgb8.png"), png);
    std::filesystem::create_directory(path("directory.png"));
    write_array("flat.npy", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    inputs_ = listing();
  }
  std::vector<std::string> inputs_;
};

TEST_P(CliImageErrors, OneLineNoOutput) {
  expect_error(run(GetParam().args, 60), GetParam());
  EXPECT_EQ(listing(), inputs_);
}

std::vector<ErrorCase> image_error_cases() {
  const auto forward = [](const std::string& x0) {
    return std::vector<std::string>{"forward", "--x0", x0, "--t", "5", "--out", "@out.npy", "--png", "@out.png"};
  };
  const auto illustrate = [](const std::string& image) {
    return std::vector<std::string>{"illustrate", "--image", image, "--steps", "50", "--t", "10", "--out", "@f.png"};
  };
  return {
      {"truncated_png", forward("@truncated.png"), "truncated.png: truncated PNG"},
      {"truncated_jpeg", forward("@truncated.jpg"), "truncated.jpg: truncated JPEG"},
      {"wrong_magic", forward("@text.png"), "text.png: not a .npy, PNG or JPEG file"},
      {"huge_declared_size", forward("@huge.png"), "100000 x 100000 pixels need"},
      {"zero_size", forward("@zero.png"), "zero.png: the image has zero size"},
      {"directory", forward("@directory.png"), "Is a directory"},
      {"noise_truncated", {"forward", "--x0", "@rgb8.png", "--noise", "@truncated.png", "--t", "5", "--out", "@out.npy"},
       "truncated.png: truncated PNG"},
      {"mean_npy_truncated", {"sample", "--mean-npy", "@truncated.jpg", "--shape", "1,3", "--steps", "10", "--out", "@out.npy"},
       "truncated.jpg: truncated JPEG"},
      {"initial_truncated", {"sample", "--initial", "@truncated.png", "--steps", "10", "--out", "@out.npy"},
       "truncated.png: truncated PNG"},
      {"illustrate_truncated", illustrate("@truncated.jpg"), "truncated.jpg: truncated JPEG"},
      {"illustrate_not_a_picture", illustrate("@flat.npy"), "expected one picture, [1, C, H, W]"},
      {"illustrate_rows_beyond_steps",
       {"illustrate", "--image", "@rgb8.png", "--steps", "4", "--rows", "5", "--out", "@f.png"},
       "--rows 5 is more levels than the 4 steps", kUsage},
      {"illustrate_t_beyond_steps",
       {"illustrate", "--image", "@rgb8.png", "--steps", "50", "--t", "50", "--out", "@f.png"},
       "step t = 50 is outside [0, 50)"},
      {"png_of_flat_array", forward("@flat.npy"), "--png: --x0"},
      {"from_step_per_sample",
       {"forward", "--from-step", "--x0", "@rgb8.png", "--t-per-sample", "@flat.npy", "--out", "@out.npy"},
       "--from-step takes one step for the batch", kUsage},
      {"from_step_velocity",
       {"forward", "--from-step", "--x0", "@rgb8.png", "--t", "3", "--out", "@out.npy", "--velocity-out", "@v.npy"},
       "--velocity-out is the v-target of q(x_t | x0)", kUsage},
      {"png_chunked",
       {"forward", "--x0", "@rgb8.png", "--t", "3", "--out", "@out.npy", "--png", "@out.png", "--chunk-rows", "1"},
       "--png draws the whole batch at once", kUsage},
  };
}

INSTANTIATE_TEST_SUITE_P(BadImages, CliImageErrors, ::testing::ValuesIn(image_error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) { return info.param.label; });

// A FIFO is read once, as a stream: a truncated PNG through it is refused.
// An image as the prior must have the sample's shape: 30 x 40 pixels are not
// laid out as 40 x 30 (the element counts agree), and nothing is written.
TEST_F(CliImages, AnImagePriorOfAnotherShapeIsRefused) {
  const RunResult r = run({"sample", "--predictor", "gaussian", "--mean-npy", image_file("small.jpg"),
                           "--std", "0", "--shape", "1,3,40,30", "--steps", "10", "--out", "@x.npy",
                           "--png", "@x.png"});
  expect_error(r, {"transposed", {}, "is [1, 3, 30, 40] but a sample is [3, 40, 30]"});
  EXPECT_EQ(listing(), std::vector<std::string>{});
}

// --panels names six files after --out: a stream, a device or a folder is a
// usage error, not './--a.png' or '/dev/stdout-a.png'.
TEST_F(CliImages, PanelsNeedAFileName) {
  ASSERT_EQ(::mkdir(path("folder").c_str(), 0700), 0);
  for (const std::string out : {"-", "/dev/stdout", "@folder", "@folder/"}) {
    const RunResult r = run({"illustrate", "--image", image_file("rgb8.png"), "--steps", "50",
                             "--t", "10", "--panels", "--out", out});
    expect_error(r, {out, {}, "--panels writes six files named after --out", kUsage});
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"folder"});
}

TEST_F(CliImages, TruncatedImageThroughAFifoIsRefused) {
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  const std::string png = file_bytes(image_file("rgb8.png"));
  std::thread writer([&] { std::ofstream(path("fifo"), std::ios::binary) << png.substr(0, 100); });
  const RunResult r = run({"forward", "--x0", "@fifo", "--t", "5", "--out", "@out.npy"}, 60);
  writer.join();
  expect_error(r, {"fifo", {}, "fifo: truncated PNG"});
  EXPECT_EQ(listing(), (std::vector<std::string>{"fifo"}));
}

}  // namespace
}  // namespace ddpm
