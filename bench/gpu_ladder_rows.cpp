// One row per (kernel, size) over the size ladder: the engine's forward
// noising, its reverse step with an external eps, its fused predictor + step,
// and the eager (unfused) versions of the step.
#include <functional>
#include <utility>

#include "gpu_internal.h"
#include "unfused_reverse.h"

namespace ddpm::bench {
namespace {

constexpr int kScheduleSteps = 1000;
constexpr int kTimedStep = 500;  // t > 0: the reverse step draws z
constexpr float kPriorMean = 0.5f;
constexpr float kPriorStd = 0.3f;

// The size ladder: one 3x64x64 image up to 2^28 elements, capped.
std::vector<std::int64_t> ladder(std::int64_t max_elements) {
  std::vector<std::int64_t> sizes;
  for (std::int64_t n :
       {std::int64_t{12288}, std::int64_t{1} << 16, std::int64_t{1} << 20, std::int64_t{1} << 22,
        std::int64_t{1} << 24, std::int64_t{1} << 26, std::int64_t{1} << 28}) {
    if (n <= max_elements) sizes.push_back(n);
  }
  if (sizes.empty()) sizes.push_back(max_elements);
  return sizes;
}

// `arrays` float arrays of n elements each, one set per rotation copy, carved
// out of one allocation and filled with random values.
struct RotatingSets {
  DeviceBuffer pool;
  std::size_t array_bytes = 0;
  int arrays = 0;
  int copies = 1;

  float* at(int copy, int array) const {
    auto* base = static_cast<char*>(pool.data());
    return reinterpret_cast<float*>(
        base + (static_cast<std::size_t>(copy) * static_cast<std::size_t>(arrays) +
                static_cast<std::size_t>(array)) *
                   array_bytes);
  }
};

// Sizes the sets; returns why not when they do not fit.
std::string plan_sets(const GpuContext& context, std::int64_t n, int arrays, bool rotate,
                      RotatingSets& sets) {
  // +1 element keeps room for curandGenerateNormal's even count.
  sets.array_bytes = aligned_bytes(static_cast<std::size_t>(n + 1) * sizeof(float));
  sets.arrays = arrays;
  const std::size_t set_bytes = sets.array_bytes * static_cast<std::size_t>(arrays);
  sets.copies =
      rotate ? rotation_copies(set_bytes, static_cast<std::size_t>(context.info.l2_bytes)) : 1;
  return check_fits(set_bytes * static_cast<std::size_t>(sets.copies));
}

void allocate_sets(GpuContext& context, RotatingSets& sets, std::uint64_t seed) {
  sets.pool = DeviceBuffer(sets.array_bytes * static_cast<std::size_t>(sets.arrays) *
                           static_cast<std::size_t>(sets.copies));
  fill_normal(sets.pool.floats(), sets.pool.bytes() / sizeof(float), seed, 0.0f, 1.0f,
              context.stream.get());
}

struct KernelSpec {
  std::string kernel;
  std::string label;
  double bytes_per_element;
  int arrays;   // float arrays of n elements per set
  bool rotate;  // rotate through copies (false: one set, see the fused row)
  int steps;    // steps per call; times are divided by it
  std::string note;
  // Enqueues one call on rotation copy `copy`.
  std::function<void(const RotatingSets&, int copy, std::int64_t n)> call;
};

Row run_kernel_row(GpuContext& context, const KernelSpec& spec, std::int64_t n) {
  RotatingSets sets;
  const std::string why = plan_sets(context, n, spec.arrays, spec.rotate, sets);
  if (!why.empty()) {
    context.notes.push_back(spec.label + " at " + format_elements(n) + " elements skipped: " + why);
    context.progress << "  " << spec.kernel << " " << format_elements(n) << ": skipped (" << why
                     << ")\n";
    Row row = skipped_row("gpu", spec.kernel, spec.label, n, spec.bytes_per_element, why);
    row.note = spec.note;
    return row;
  }
  allocate_sets(context, sets, static_cast<std::uint64_t>(n) * 31 + spec.arrays);
  const auto per_call = time_calls(context.stream.get(), context.flusher, context.plan(sets.copies),
                                   [&](int c) { spec.call(sets, c, n); });
  std::vector<double> per_step;
  for (double s : per_call) per_step.push_back(s / spec.steps);

  Row row;
  row.section = "gpu";
  row.kernel = spec.kernel;
  row.label = spec.label;
  row.elements = n;
  row.shape = shape_text(shape_for(n));
  row.steps = spec.steps;
  row.bytes_per_element = spec.bytes_per_element;
  row.seconds = summarize(per_step);
  row.derive_rates();
  row.note = spec.note;
  if (sets.copies > 1) row.detail = std::to_string(sets.copies) + " rotating buffer sets";
  if (!spec.rotate &&
      static_cast<double>(n) * 4.0 * spec.arrays <= static_cast<double>(context.info.l2_bytes)) {
    row.detail = "x fits in L2: steps after the first may hit L2";
  }
  context.progress << "  " << spec.kernel << " " << format_elements(n) << ": "
                   << row.seconds.median * 1e6 << " us/step, " << row.gigabytes_per_second
                   << " GB/s\n"
                   << std::flush;
  return row;
}

}  // namespace

std::vector<Row> run_ladder_rows(GpuContext& context) {
  const GpuBenchOptions& options = context.options;
  SamplerOptions sampler_options;
  sampler_options.backend = Backend::cuda;
  Sampler sampler(Schedule::linear(kScheduleSteps), sampler_options);
  const Schedule& schedule = sampler.schedule();

  GaussianPrior prior;
  prior.mean = kPriorMean;
  prior.std = kPriorStd;
  GaussianPredictor gaussian(prior);
  EagerReverse eager(20261123, context.stream.get());
  const EagerStepScalars scalars = eager_step_scalars(schedule, kTimedStep);
  void* stream = context.stream_handle();
  const int fused_steps =
      options.fused_steps < kScheduleSteps ? options.fused_steps : kScheduleSteps;

  auto span_of = [](float* p, std::int64_t n) {
    return std::span<float>(p, static_cast<std::size_t>(n));
  };
  auto cspan_of = [](const float* p, std::int64_t n) {
    return std::span<const float>(p, static_cast<std::size_t>(n));
  };

  std::vector<KernelSpec> specs;
  specs.push_back(KernelSpec{"forward", "forward x0 -> (x_t, eps), engine", 12.0, 3, true, 1,
                             "reads x0; writes x_t, eps; eps drawn in the kernel (Philox)",
                             [&](const RotatingSets& sets, int c, std::int64_t n) {
                               ForwardRequest request;
                               request.x0 = cspan_of(sets.at(c, 0), n);
                               request.shape = shape_for(n);
                               request.step = kTimedStep;
                               request.noise = NoiseKey{11, 0};
                               request.x_t = span_of(sets.at(c, 1), n);
                               request.eps_out = span_of(sets.at(c, 2), n);
                               request.memory = Memory::device;
                               request.stream = stream;
                               sampler.forward(request);
                             }});
  specs.push_back(KernelSpec{"reverse_step", "reverse step, external eps, engine", 12.0, 3, true, 1,
                             "reads x_t, eps; writes x_{t-1}; z drawn in the kernel; t=500",
                             [&](const RotatingSets& sets, int c, std::int64_t n) {
                               ReverseStepRequest request;
                               request.x_t = cspan_of(sets.at(c, 0), n);
                               request.model_output = cspan_of(sets.at(c, 1), n);
                               request.shape = shape_for(n);
                               request.step = kTimedStep;
                               request.noise = NoiseKey{12, 0};
                               request.x_prev = span_of(sets.at(c, 2), n);
                               request.memory = Memory::device;
                               request.stream = stream;
                               sampler.reverse_step(request);
                             }});
  specs.push_back(KernelSpec{"fused_step", "fused Gaussian predictor + reverse step, engine", 8.0,
                             1, false, fused_steps,
                             "sample() over K=" + std::to_string(fused_steps) +
                                 " steps (t=K-1..0), time/K; reads and writes x once per step; the "
                                 "last step (t=0) draws no noise",
                             [&](const RotatingSets& sets, int c, std::int64_t n) {
                               SampleRequest request;
                               request.x = span_of(sets.at(c, 0), n);
                               request.shape = shape_for(n);
                               request.noise = NoiseKey{13, 0};
                               request.initial_noise_given = true;
                               request.start_step = fused_steps - 1;
                               request.memory = Memory::device;
                               request.stream = stream;
                               sampler.sample(request, gaussian);
                             }});
  specs.push_back(KernelSpec{"unfused_reverse",
                             "reverse step, eager: 6 kernels (5 ops + curandGenerateNormal)",
                             kEagerReverseBytesPerElement, 8, true, 1,
                             "bytes summed over its kernels; compare with reverse_step (12 B/elem)",
                             [&](const RotatingSets& sets, int c, std::int64_t n) {
                               EagerArrays arrays;
                               arrays.x = sets.at(c, 0);
                               arrays.eps = sets.at(c, 1);
                               arrays.out = sets.at(c, 2);
                               arrays.z = sets.at(c, 3);
                               arrays.t1 = sets.at(c, 4);
                               arrays.t2 = sets.at(c, 5);
                               arrays.t3 = sets.at(c, 6);
                               arrays.t4 = sets.at(c, 7);
                               eager.reverse(arrays, static_cast<std::size_t>(n), scalars);
                             }});
  specs.push_back(
      KernelSpec{"unfused_step", "predictor + reverse step, eager: 9 kernels",
                 kEagerPredictorBytesPerElement + kEagerReverseBytesPerElement, 10, true, 1,
                 "bytes summed over its kernels; compare with fused_step (8 B/elem)",
                 [&](const RotatingSets& sets, int c, std::int64_t n) {
                   EagerArrays arrays;
                   arrays.x = sets.at(c, 0);
                   arrays.out = sets.at(c, 1);
                   arrays.z = sets.at(c, 2);
                   arrays.t1 = sets.at(c, 3);
                   arrays.t2 = sets.at(c, 4);
                   arrays.t3 = sets.at(c, 5);
                   arrays.t4 = sets.at(c, 6);
                   arrays.p1 = sets.at(c, 7);
                   arrays.p2 = sets.at(c, 8);
                   arrays.eps_out = sets.at(c, 9);
                   eager.predict_and_reverse(arrays, static_cast<std::size_t>(n), scalars,
                                             kPriorMean, kPriorStd * kPriorStd);
                 }});

  std::vector<Row> rows;
  const auto sizes = ladder(options.max_elements);
  for (const KernelSpec& spec : specs) {
    context.progress << spec.label << ":\n" << std::flush;
    for (std::int64_t n : sizes) rows.push_back(run_kernel_row(context, spec, n));
  }
  return rows;
}

}  // namespace ddpm::bench
