// ddpm illustrate: the forward and reverse processes drawn on a photograph
// (illustration.h), as one labelled PNG or one per panel, with the l1
// figures also on stdout.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "backend_options.h"
#include "command_line.h"
#include "commands.h"
#include "ddpm/error.h"
#include "ddpm/image.h"
#include "ddpm/sampler.h"
#include "illustration.h"
#include "input_arrays.h"
#include "output_files.h"
#include "progress_bar.h"
#include "schedule_options.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

struct IllustrateOptions {
  std::string image_path;
  std::string out_path;
  bool panels = false;
  IllustrationSettings settings;
  ScheduleOptions schedule;
  BackendOptions backend;
};

// --panels: FIGURE.png -> FIGURE-a.png ... FIGURE-f.png.
std::string panel_path(const std::string& out_path, char letter) {
  const std::size_t slash = out_path.rfind('/');
  const std::size_t dot = out_path.rfind('.');
  const bool has_extension = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
  const std::string stem = has_extension ? out_path.substr(0, dot) : out_path;
  const std::string extension = has_extension ? out_path.substr(dot) : ".png";
  return stem + "-" + letter + extension;
}

// --panels makes six names from --out's, so --out must name a file to be:
// not a stream ('-', /dev/stdout, a FIFO, a device) or a folder, whose
// names would become './--a.png' or '/dev/stdout-a.png'.
void check_panels_out(const std::string& out) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(out, error);
  const bool special = fs::exists(status) && !fs::is_regular_file(status);
  if (out == "-" || out.empty() || out.back() == '/' || special || out.rfind("/dev/", 0) == 0 ||
      out.rfind("/proc/", 0) == 0) {
    throw UsageError("--panels writes six files named after --out ('" + out +
                     "' is a stream, a device or a folder): give a file name such as figure.png");
  }
}

void run_illustrate(const IllustrateOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, std::string>> outputs_checked;
  if (o.panels) {
    check_panels_out(o.out_path);
    for (char letter = 'a'; letter <= 'f'; ++letter) {
      outputs_checked.emplace_back("--out (--panels)", panel_path(o.out_path, letter));
    }
  } else {
    outputs_checked.emplace_back("--out", o.out_path);
  }
  check_outputs(outputs_checked);

  SamplerOptions sampler_options;
  o.schedule.apply_to(sampler_options);
  o.backend.apply_to(sampler_options);
  Sampler sampler(o.schedule.build(), sampler_options);
  // The oracle answers in any prediction type; at zero terminal SNR the
  // first reverse step needs v (as in ddpm demo). (d) and (e) stay in eps.
  SamplerOptions oracle_options = sampler_options;
  if (oracle_options.rescale_betas_zero_snr) {
    oracle_options.prediction_type = PredictionType::v_prediction;
  }
  Sampler oracle_sampler(o.schedule.build(), oracle_options);

  const int steps = sampler.schedule().steps();
  const IllustrationSettings& s = o.settings;
  if (s.rows > steps) {
    throw UsageError("--rows " + std::to_string(s.rows) + " is more levels than the " +
                     std::to_string(steps) + " steps of the schedule");
  }
  sampler.schedule().check_step(s.step);

  const BatchArray image = read_batch(o.image_path, "--image");
  const auto& shape = image.array.shape;
  if (shape.size() != 4 || shape[0] != 1 || (shape[1] != 1 && shape[1] != 3)) {
    throw Error("--image " + o.image_path + " is " + format_shape(shape) +
                ": expected one picture, [1, C, H, W] with C = 1 or 3 (a PNG or JPEG is read so)");
  }
  // The largest working set: M samples and a few whole images besides.
  require_memory(image.shape.dim * (s.samples + 8), "--image " + o.image_path + " with --samples " +
                                                       std::to_string(s.samples));

  ProgressBar progress("oracle reverse run");
  const Illustration figure = illustrate(image.array, sampler, oracle_sampler, s,
                                         [&](int done, int total) { progress.update(done, total); });

  const std::vector<std::string> title = {
      "ddpm illustrate: " + o.image_path + " (" + format_shape(shape) + "), " +
          to_string(sampler.schedule().kind()) + " schedule, T = " + std::to_string(steps) +
          ", seed " + std::to_string(s.seed) + ", backend " + to_string(sampler.backend())};
  OutputFiles outputs;
  if (o.panels) {
    for (const Panel& panel : figure.panels) {
      outputs.write_bytes(panel_path(o.out_path, panel.letter), illustration_png(figure, {&panel}, title));
    }
  } else {
    std::vector<const Panel*> all;
    for (const Panel& panel : figure.panels) all.push_back(&panel);
    outputs.write_bytes(o.out_path, illustration_png(figure, all, title));
  }
  outputs.commit();

  std::FILE* stream = outputs.summary_stream();
  for (const Panel& panel : figure.panels) {
    for (const std::string& line : panel.l1_lines) std::fprintf(stream, "%s\n", line.c_str());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(stream,
               "wrote %s: (a)-(e) %.2f s, (f) %.2f s (%d reverse steps over %lld values), "
               "backend %s, %.2f s in all\n",
               o.panels ? panel_path(o.out_path, '*').c_str() : o.out_path.c_str(),
               figure.seconds_a_to_e, figure.seconds_f, steps,
               static_cast<long long>(image.shape.dim), to_string(sampler.backend()).c_str(),
               seconds);
}

}  // namespace

void add_illustrate_command(CLI::App& app) {
  auto options = std::make_shared<IllustrateOptions>();
  IllustrateOptions& o = *options;
  CLI::App* command = app.add_subcommand(
      "illustrate",
      "Draw the forward and reverse processes on a photograph: (a) q(x_t | x0) at N levels,\n"
      "(b) the one step q(x_t | x_t-1), (c) x0, x_t and eps, (d) x0 recovered from x_t and eps,\n"
      "(e) the posterior mean against the true one, (f) the reverse run with the oracle");
  command->add_option("--image", o.image_path, "the photograph (PNG, JPEG, or a [1, C, H, W] .npy)")
      ->required();
  command->add_option("--out", o.out_path, "where to write the figure (.png)")->required();
  command->add_flag("--panels", o.panels,
                    "one PNG per panel instead: FIGURE-a.png ... FIGURE-f.png");
  command->add_option("--rows", o.settings.rows, "N: noise levels t = i T / N, i = 0 .. N-1")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  command->add_option("--samples", o.settings.samples, "M: samples per level in (a) and (b)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  command->add_option("--t", o.settings.step, "the step t of (c), (d) and (e)")
      ->capture_default_str();
  command->add_option("--tile-size", o.settings.tile_size,
                      "the longest side of each picture in the figure (pixels)")
      ->check(CLI::Range(8, 1024))
      ->capture_default_str();
  add_seed_option(*command, o.settings.seed);
  o.schedule.add_to(*command, false);
  o.backend.add_to(*command);
  command->callback([options] { run_illustrate(*options); });
}

}  // namespace ddpm::cli
