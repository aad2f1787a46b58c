#pragma once
// The predictor flags of `ddpm sample`: what predicts the noise, and how the
// run is conditioned on it.
//
//   built-in priors  --predictor gaussian|gmm, --mean --std --mean-npy --std-npy
//                    (gaussian), --gmm SPEC.json (gmm); their unconditional
//                    counterparts for guidance: --uncond-mean --uncond-std
//                    (gaussian; each defaults to the conditional value) and
//                    --uncond-gmm SPEC.json (gmm)
//   a trained model  --model FILE.safetensors (an mlp_denoiser with its model
//                    card, docs/model-format.md), --class, --allow-tf32
//   guidance         --guidance-scale W, --guidance-rescale R (every predictor
//                    with an unconditional counterpart)
//
// Defaults with --model: the card's schedule, scheduler config and
// recommended sampler fill every schedule and rule flag not given (see
// ScheduleOptions); --guidance-scale defaults to the card's recommended
// guidance when --class is given, and to 1 (no guidance) otherwise, since
// without a class every row is unconditional.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ddpm/model.h"
#include "ddpm/predictor.h"
#include "ddpm/scheduler_config.h"
#include "ddpm/types.h"

namespace ddpm::cli {

// --class: "K" (every row), "K0,K1,..." (one per row) or "all" (row i gets
// class i mod num_classes).
struct ClassSpec {
  bool all = false;
  std::vector<std::int32_t> labels;
};
// Throws ddpm::Error for anything else (the message names no flag: CLI11's
// check adds it).
ClassSpec parse_class_spec(const std::string& text);

struct PredictorOptions {
  std::string predictor = "gaussian";
  float mean = 0.0f;
  float std = 1.0f;
  std::string mean_path;
  std::string std_path;
  float uncond_mean = 0.0f;
  float uncond_std = 1.0f;
  std::string gmm_path;
  std::string uncond_gmm_path;
  std::string model_path;
  std::string class_text;
  bool allow_tf32 = false;
  std::string variant;            // --variant: a diffusers folder's weights file
  std::string precision = "fp32";  // --precision
  double guidance_scale = 1.0;
  double guidance_rescale = 0.0;

  void add_to(CLI::App& command);
  bool has_model() const { return !model_path.empty(); }
  bool given(const CLI::Option* flag) const { return flag != nullptr && flag->count() > 0; }

  // The flags that belong to each kind of predictor (for "applies only to").
  std::vector<CLI::Option*> gaussian_flags, gmm_flags, model_flags;
  CLI::Option *predictor_flag = nullptr, *uncond_mean_flag = nullptr, *uncond_std_flag = nullptr,
              *class_flag = nullptr, *guidance_scale_flag = nullptr,
              *guidance_rescale_flag = nullptr;
};

// What a run samples with: the predictor, the rows' labels and the guidance.
struct ChosenPredictor {
  std::unique_ptr<NoisePredictor> predictor;
  const NetworkPredictor* model = nullptr;  // the predictor, when it is --model's network
  std::vector<std::int32_t> class_labels;  // one per row, or empty (no --class)
  double guidance_scale = 1.0;
  double guidance_rescale = 0.0;
};

// Step 1, before the sampler is built: checks which flags go together
// (usage errors) and loads --model, if given. `threads` is the CPU thread
// count (--threads) the network's GEMMs use.
ChosenPredictor load_predictor(const PredictorOptions& o, int threads);

// The defaults a --model run starts from: its card's recommended settings
// (nullopt without a model).
std::optional<SchedulerConfig> model_defaults(const ChosenPredictor& chosen);

// Step 2, once the batch shape is known: builds the built-in predictor (or
// checks the model against `shape`), the class labels of the `shape.batch`
// rows and the guidance. `shape_text` names the shape in errors; `extents`
// is the whole [batch, ...] shape, which a multi-dimensional per-element
// file (an image) must match.
void finish_predictor(const PredictorOptions& o, ChosenPredictor& chosen, Shape shape,
                      const std::string& shape_text, const std::vector<std::int64_t>& extents);

// "class 3", "classes 0..9 cycling", "classes 1,2,3", or "" without labels:
// for summaries and figures.
std::string describe_classes(const PredictorOptions& o, const ChosenPredictor& chosen);

}  // namespace ddpm::cli
