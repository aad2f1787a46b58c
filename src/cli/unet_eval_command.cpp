// ddpm unet-eval: one forward pass of a diffusers UNet2DModel folder on a
// batch from .npy, as diffusers' UNet2DModel(sample, timestep,
// class_labels).sample computes it; scripts/check-unet-against-diffusers
// compares the two on full-size architectures.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "ddpm/error.h"
#include "ddpm/model.h"
#include "ddpm/unet2d.h"
#include "input_arrays.h"
#include "output_files.h"
#include "predictor_options.h"
#include "text_parsing.h"

namespace ddpm::cli {
namespace {

struct UNetEvalOptions {
  std::string model_path;
  std::string input_path;
  std::string timestep;
  std::string class_text;
  std::string variant;
  std::string out_path;
  int threads = 0;
};

void run_unet_eval(const UNetEvalOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  check_outputs({{"--out", o.out_path}});
  ModelOptions model_options;
  model_options.threads = o.threads;
  model_options.variant = o.variant;
  const std::unique_ptr<NetworkPredictor> network = load_model(o.model_path, model_options);
  const auto* unet = dynamic_cast<const UNet2DPredictor*>(network.get());
  if (unet == nullptr) {
    throw UsageError("--model " + o.model_path + " is not a diffusers UNet2DModel folder");
  }
  const UNet2DConfig& config = unet->config();
  const BatchArray input = read_batch(o.input_path, "--input");
  const std::vector<std::int64_t>& extents = input.array.shape;
  if (extents.size() != 4 || extents[1] != config.in_channels) {
    throw Error("--input " + o.input_path + " is " + format_shape(extents) + "; the model takes [N, " +
                std::to_string(config.in_channels) + ", H, W]");
  }
  const std::int64_t batch = extents[0];
  for (std::size_t i = 0; i < input.array.data.size(); ++i) {
    if (!std::isfinite(input.array.data[i])) {
      throw Error("--input " + o.input_path + " has a non-finite value (" + std::to_string(input.array.data[i]) +
                  ") at element " + std::to_string(i));
    }
  }
  std::vector<double> given;
  try {
    given = parse_numbers(o.timestep, "--timestep", 1, static_cast<std::size_t>(std::max<std::int64_t>(batch, 1)),
                          "500, or 999,500,1 with one per sample");
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (given.size() != 1 && static_cast<std::int64_t>(given.size()) != batch) {
    throw UsageError("--timestep lists " + std::to_string(given.size()) + " times for " + std::to_string(batch) +
                     " samples: give one, or one per sample");
  }
  std::vector<float> times(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < times.size(); ++i) times[i] = static_cast<float>(given.size() == 1 ? given[0] : given[i]);
  std::vector<std::int32_t> labels;
  if (!o.class_text.empty()) {
    const ClassSpec spec = parse_class_spec(o.class_text);
    const int rows = config.num_class_embeds;
    for (std::int64_t i = 0; i < batch; ++i) {
      if (spec.all) {
        labels.push_back(rows > 0 ? static_cast<std::int32_t>(i % rows) : 0);
      } else if (spec.labels.size() == 1 || static_cast<std::int64_t>(spec.labels.size()) == batch) {
        labels.push_back(spec.labels[spec.labels.size() == 1 ? 0 : static_cast<std::size_t>(i)]);
      } else {
        throw UsageError("--class lists " + std::to_string(spec.labels.size()) + " classes for " +
                         std::to_string(batch) + " samples: give one, one per sample, or all");
      }
    }
  } else if (config.num_class_embeds > 0) {
    labels.assign(static_cast<std::size_t>(batch), config.num_class_embeds - 1);  // the null label
  }
  std::vector<std::int64_t> out_extents = extents;
  out_extents[1] = config.out_channels;
  std::vector<float> out(static_cast<std::size_t>(batch * config.out_channels * extents[2] * extents[3]));
  unet->evaluate(input.array.data, batch, extents[2], extents[3], times, labels, out);

  OutputFiles outputs;
  outputs.write_npy(o.out_path, out_extents, out.data());
  outputs.commit();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::fprintf(outputs.summary_stream(), "wrote %s: %s float32, UNet2DModel of %lld parameters, %.3f s\n",
               o.out_path.c_str(), format_shape(out_extents).c_str(),
               static_cast<long long>(unet->parameter_count()), seconds);
}

}  // namespace

void add_unet_eval_command(CLI::App& app) {
  auto options = std::make_shared<UNetEvalOptions>();
  UNetEvalOptions& o = *options;
  CLI::App* command = app.add_subcommand(
      "unet-eval", "One forward pass of a diffusers UNet2DModel folder, as UNet2DModel(x, t, class_labels)");
  command->add_option("--model", o.model_path, "a diffusers UNet2DModel or pipeline folder")->required();
  command->add_option("--input", o.input_path, "the batch x, .npy [N, C, H, W]")->required();
  command
      ->add_option("--timestep", o.timestep,
                   "the time the model is given: one for every sample, or one per sample\n"
                   "(fractional times as given, as a diffusers float tensor)")
      ->required();
  command
      ->add_option("--class", o.class_text,
                   "class-conditional models: the class of every sample (K), one per sample\n"
                   "(K0,K1,...), or all; default: the last embedding row (the null label)")
      ->check(parsed_by([](const std::string& text) { parse_class_spec(text); }));
  command->add_option("--variant", o.variant, "read diffusion_pytorch_model.VARIANT.safetensors (e.g. fp16)");
  command->add_option("--threads", o.threads, "CPU threads (0: all hardware threads)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  command->add_option("--out", o.out_path, "where to write the output (.npy [N, out_channels, H, W])")->required();
  command->callback([options] { run_unet_eval(*options); });
}

}  // namespace ddpm::cli
