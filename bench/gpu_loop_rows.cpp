// The whole T-step sampling loop through Sampler::sample, three ways:
//   (a) the GaussianPredictor itself: the engine fuses it into the step and
//       captures the loop in a CUDA Graph;
//   (b) the same predictor behind a wrapper that hides the fusable prior but
//       stays capturable: a predictor kernel and a step kernel per step, in a graph;
//   (c) the wrapper, not capturable: the same two kernels per step, launched
//       one by one.
#include "gpu_internal.h"
#include "gpu_loop_predictor.h"

namespace ddpm::bench {
namespace {

constexpr float kPriorMean = 0.5f;
constexpr float kPriorStd = 0.3f;

struct LoopVariant {
  std::string kernel;
  std::string label;
  double bytes_per_element;  // per step
  NoisePredictor* predictor;
};

Row run_loop_row(GpuContext& context, Sampler& sampler, const LoopVariant& variant,
                 std::int64_t n) {
  const int steps = sampler.schedule().steps();
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
  // Room for what the engine allocates itself (eps for the unfused variants).
  const std::string why = check_fits(3 * bytes);
  if (!why.empty()) {
    context.notes.push_back(variant.label + " at " + format_elements(n) +
                            " elements skipped: " + why);
    return skipped_row("gpu-loop", variant.kernel, variant.label, n, variant.bytes_per_element,
                       why);
  }
  DeviceBuffer x(bytes);
  fill_normal(x.floats(), static_cast<std::size_t>(n), 99, 0.0f, 1.0f, context.stream.get());

  SampleRequest request;
  request.x = std::span<float>(x.floats(), static_cast<std::size_t>(n));
  request.shape = shape_for(n);
  request.noise = NoiseKey{21, 0};
  request.initial_noise_given = true;  // x holds x_T; each call continues from the last
  request.start_step = steps - 1;
  request.memory = Memory::device;
  request.stream = context.stream_handle();

  TimingPlan plan{1, context.options.loop_repetitions, 1};
  const auto per_call = time_calls(context.stream.get(), context.flusher, plan,
                                   [&](int) { sampler.sample(request, *variant.predictor); });
  std::vector<double> per_step;
  for (double s : per_call) per_step.push_back(s / steps);

  Row row;
  row.section = "gpu-loop";
  row.kernel = variant.kernel;
  row.label = variant.label;
  row.elements = n;
  row.shape = shape_text(request.shape);
  row.steps = steps;
  row.bytes_per_element = variant.bytes_per_element;
  row.seconds = summarize(per_step);
  row.derive_rates();
  row.note = "T=" + std::to_string(steps) + " per call, time/T; t=0 draws no noise";
  if (static_cast<double>(bytes) <= static_cast<double>(context.info.l2_bytes)) {
    row.detail = "x fits in L2";
  }
  context.progress << "  " << variant.kernel << " " << format_elements(n) << ": "
                   << row.seconds.median * 1e6 << " us/step\n"
                   << std::flush;
  return row;
}

}  // namespace

std::vector<Row> run_loop_rows(GpuContext& context) {
  const GpuBenchOptions& options = context.options;
  SamplerOptions sampler_options;
  sampler_options.backend = Backend::cuda;
  Sampler sampler(Schedule::linear(options.loop_steps), sampler_options);

  GaussianPrior prior;
  prior.mean = kPriorMean;
  prior.std = kPriorStd;
  GaussianPredictor fused(prior);
  UnfusedPredictor unfused_graph(fused, /*capturable=*/true);
  UnfusedPredictor unfused_eager(fused, /*capturable=*/false);

  const std::vector<LoopVariant> variants = {
      {"loop_fused_graph", "(a) loop: fused predictor+step, CUDA graph", 8.0, &fused},
      {"loop_unfused_graph", "(b) loop: predictor kernel + step kernel, CUDA graph", 20.0,
       &unfused_graph},
      {"loop_unfused_nograph", "(c) loop: predictor kernel + step kernel, no graph", 20.0,
       &unfused_eager},
  };
  std::vector<std::int64_t> sizes = {options.loop_small_elements};
  if (options.loop_large_elements > options.loop_small_elements) {
    sizes.push_back(options.loop_large_elements);
  }

  std::vector<Row> rows;
  for (std::int64_t n : sizes) {
    context.progress << "whole loop, T=" << options.loop_steps << ", " << format_elements(n)
                     << " elements:\n"
                     << std::flush;
    for (const LoopVariant& variant : variants)
      rows.push_back(run_loop_row(context, sampler, variant, n));
  }
  return rows;
}

}  // namespace ddpm::bench
