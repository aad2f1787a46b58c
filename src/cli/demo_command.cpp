// ddpm demo: one figure that shows the whole method on a built-in picture.
//   row 1: forward noising q(x_t | x0) at t = 0, T/5, 2T/5, 3T/5, 4T/5, T-1;
//   row 2: the reverse process with the oracle predictor (x0 known exactly)
//          started from row 1's last image, shown at the same t; its first
//          column is the final result, which should be the picture again;
//   row 3: column 0 is the mean of 16 fresh samples from the prior
//          x0 ~ N(picture, 0.3^2), the others are single samples: the mean
//          recovers the picture, the samples show the prior's spread.
// Each row has a title and each picture a caption (its step t, or what it is),
// under a title line with the schedule, T, seed and backend.
#include <cstdio>
#include <memory>

#include "backend_options.h"
#include "command_line.h"
#include "commands.h"
#include "ddpm/error.h"
#include "ddpm/npy.h"
#include "ddpm/predictor.h"
#include "ddpm/sampler.h"
#include "demo_picture.h"
#include "output_files.h"
#include "png_grid.h"
#include "progress_bar.h"
#include "schedule_options.h"

namespace ddpm::cli {
namespace {

constexpr int kColumns = 6;
constexpr int kPriorSamples = 16;
constexpr float kPriorStd = 0.3f;
constexpr int kTextScale = 2;

struct DemoOptions {
  std::string out_path;
  int size = 64;
  std::uint64_t seed = 0;
  ScheduleOptions schedule;
  BackendOptions backend;
};

// The columns' steps: 0, T/5, ..., 4T/5, T-1.
std::vector<int> snapshot_steps(int steps) {
  std::vector<int> result;
  for (int j = 0; j < kColumns - 1; ++j) {
    result.push_back(static_cast<int>(std::int64_t{j} * steps / (kColumns - 1)));
  }
  result.push_back(steps - 1);
  return result;
}

std::span<const float> row_of(const std::vector<float>& batch, int row, std::size_t dim) {
  return std::span<const float>(batch).subspan(row * dim, dim);
}

// Row 1: the picture noised to each column's step, all in one request.
void draw_forward_row(Sampler& sampler, const std::vector<float>& picture,
                      const std::vector<int>& steps, std::uint64_t seed, ImageGrid& grid,
                      std::vector<float>& x_last) {
  const std::size_t dim = picture.size();
  std::vector<float> x0;
  for (int j = 0; j < kColumns; ++j) x0.insert(x0.end(), picture.begin(), picture.end());
  const std::vector<std::int32_t> per_sample(steps.begin(), steps.end());
  std::vector<float> x_t(x0.size());

  ForwardRequest request;
  request.x0 = x0;
  request.shape = {kColumns, static_cast<std::int64_t>(dim)};
  request.steps = per_sample;
  request.noise = {seed, 0};
  request.x_t = x_t;
  sampler.forward(request);

  grid.set_row_title(0, "forward: x_t ~ q(x_t | x0)");
  for (int j = 0; j < kColumns; ++j) {
    grid.place_rgb(0, j, row_of(x_t, j, dim));
    grid.set_caption(0, j, "t = " + std::to_string(steps[static_cast<std::size_t>(j)]));
  }
  const auto last = row_of(x_t, kColumns - 1, dim);
  x_last.assign(last.begin(), last.end());
}

// Row 2: the reverse process from the noised picture at T-1, run in pieces
// that stop at each column's step (a loop in pieces equals one run bit for
// bit), with the oracle predictor.
void draw_reverse_row(Sampler& sampler, const std::vector<float>& picture,
                      const std::vector<int>& steps, std::uint64_t seed, std::vector<float> x,
                      ImageGrid& grid, ProgressBar& progress) {
  const int total = sampler.schedule().steps();
  GaussianPrior oracle;
  oracle.means = picture;
  oracle.std = 0.0f;
  GaussianPredictor predictor(oracle);

  // x holds x_next, the state before step `next` runs.
  int next = total - 1;
  auto run_down_to = [&](int end_step) {
    SampleRequest piece;
    piece.x = x;
    piece.shape = {1, static_cast<std::int64_t>(picture.size())};
    piece.noise = {seed, 0};
    piece.initial_noise_given = true;
    piece.start_step = next;
    piece.end_step = end_step;
    const int done_before = total - 1 - next;
    piece.progress = [&, done_before](int done, int) {
      progress.update(done_before + done, 2 * total);
    };
    sampler.sample(piece, predictor);
    next = end_step - 1;
  };
  for (int j = kColumns - 1; j >= 1; --j) {
    const int column_step = steps[static_cast<std::size_t>(j)];
    if (column_step < next) run_down_to(column_step + 1);  // leaves x = x_{column_step}
    grid.place_rgb(1, j, x);
    grid.set_caption(1, j, "t = " + std::to_string(column_step));
  }
  run_down_to(0);  // the end of the loop: x_0 as the model returns it
  grid.place_rgb(1, 0, x);
  grid.set_caption(1, 0, "result");
  grid.set_row_title(1, "reverse with the oracle predictor, from t = " +
                            std::to_string(steps.back()) + " above");
}

// Row 3: fresh samples from N(picture, 0.3^2) and, first, their mean.
void draw_prior_row(Sampler& sampler, const std::vector<float>& picture, std::uint64_t seed,
                    ImageGrid& grid, ProgressBar& progress) {
  const std::size_t dim = picture.size();
  GaussianPrior prior;
  prior.means = picture;
  prior.std = kPriorStd;
  GaussianPredictor predictor(prior);
  std::vector<float> samples(dim * kPriorSamples);

  SampleRequest request;
  request.x = samples;
  request.shape = {kPriorSamples, static_cast<std::int64_t>(dim)};
  request.noise = {seed, 0};
  const int steps = sampler.schedule().steps();
  request.progress = [&](int done, int total) {
    progress.update(steps + std::int64_t{done} * steps / total, 2 * steps);
  };
  sampler.sample(request, predictor);

  std::vector<float> mean(dim, 0.0f);
  for (int s = 0; s < kPriorSamples; ++s) {
    for (std::size_t i = 0; i < dim; ++i) mean[i] += samples[s * dim + i] / kPriorSamples;
  }
  grid.set_row_title(2, "samples of the prior N(picture, 0.3^2)");
  grid.place_rgb(2, 0, mean);
  grid.set_caption(2, 0, "mean of " + std::to_string(kPriorSamples));
  for (int j = 1; j < kColumns; ++j) {
    grid.place_rgb(2, j, row_of(samples, j - 1, dim));
    grid.set_caption(2, j, "sample " + std::to_string(j));
  }
}

void run_demo(const DemoOptions& o) {
  check_outputs({{"--out", o.out_path}});
  SamplerOptions sampler_options;
  o.schedule.apply_to(sampler_options);
  o.backend.apply_to(sampler_options);
  // The demo's predictor is the exact prior, which answers in any prediction
  // type: with zero terminal SNR it answers in v, which the last step needs.
  if (sampler_options.rescale_betas_zero_snr) {
    sampler_options.prediction_type = PredictionType::v_prediction;
  }
  Sampler sampler(o.schedule.build(), sampler_options);

  const std::vector<float> picture = make_demo_picture(o.size);
  const std::vector<int> steps = snapshot_steps(sampler.schedule().steps());
  // Small pictures are drawn larger so that the figure is easy to look at.
  ImageGrid grid(3, kColumns, o.size, o.size, std::max(1, 128 / o.size), kTextScale);
  grid.add_title_line("ddpm demo: " + to_string(sampler.schedule().kind()) + " schedule, T = " +
                      std::to_string(sampler.schedule().steps()) + ", seed " +
                      std::to_string(o.seed) + ", backend " + to_string(sampler.backend()));
  ProgressBar progress("demo");

  std::vector<float> x_last;
  draw_forward_row(sampler, picture, steps, o.seed, grid, x_last);
  draw_reverse_row(sampler, picture, steps, o.seed, std::move(x_last), grid, progress);
  draw_prior_row(sampler, picture, o.seed, grid, progress);

  OutputFiles outputs;
  outputs.write_bytes(o.out_path, grid.encode_png());
  outputs.commit();
  std::fprintf(outputs.summary_stream(), "wrote %s\n", o.out_path.c_str());
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto options = std::make_shared<DemoOptions>();
  CLI::App* command = app.add_subcommand(
      "demo", "Draw a PNG of forward noising, oracle denoising and prior samples of a picture");
  command->add_option("--out", options->out_path, "where to write the figure (.png)")->required();
  command->add_option("--size", options->size, "picture size in pixels (square, RGB)")
      ->check(CLI::Range(4, 1024))
      ->capture_default_str();
  add_seed_option(*command, options->seed);
  options->schedule.add_to(*command, false);
  options->backend.add_to(*command);
  command->callback([options] { run_demo(*options); });
}

}  // namespace ddpm::cli
