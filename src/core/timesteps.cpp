// Timestep selection with diffusers' semantics (DDPMScheduler.set_timesteps
// and DDIMScheduler.set_timesteps), including NumPy's rounding (half to even)
// and the way np.arange and np.linspace form their values, so that the
// lists agree with diffusers' element for element.
#include "timesteps.h"

#include <cmath>
#include <string>

#include "ddpm/error.h"
#include "rules/step_rule.h"

namespace ddpm::detail {

long long round_half_even(double v) { return static_cast<long long>(std::nearbyint(v)); }

// y_i = start + i * ((stop - start) / (n - 1)), the last exactly `stop`.
std::vector<double> numpy_linspace(double start, double stop, int n) {
  std::vector<double> out(static_cast<std::size_t>(n));
  const double step = n > 1 ? (stop - start) / (n - 1) : 0.0;
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = i * step + start;
  if (n > 1) out.back() = stop;
  return out;
}

// ceil((0 - start) / -ratio) elements, filled as start + i * delta with
// delta = (start - ratio) - start.
std::vector<double> numpy_arange_down(double start, double ratio) {
  const auto length = static_cast<long long>(std::ceil((0.0 - start) / -ratio));
  const double delta = (start + -ratio) - start;
  std::vector<double> out;
  for (long long i = 0; i < length; ++i) out.push_back(start + static_cast<double>(i) * delta);
  return out;
}

namespace {

// np.linspace(0, T - 1, n).round()[::-1].
std::vector<long long> linspace_timesteps(int steps, int n) {
  const std::vector<double> y = numpy_linspace(0.0, steps - 1, n);
  std::vector<long long> out;
  for (auto it = y.rbegin(); it != y.rend(); ++it) out.push_back(round_half_even(*it));
  return out;
}

// (np.arange(0, n) * (T // n)).round()[::-1] + steps_offset.
std::vector<long long> leading_timesteps(int steps, int n, int offset) {
  const long long ratio = steps / n;
  std::vector<long long> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(n - 1 - i)] = i * ratio + offset;
  return out;
}

// np.round(np.arange(T, 0, -T / n)) - 1.
std::vector<long long> trailing_timesteps(int steps, int n) {
  std::vector<long long> out;
  for (double v : numpy_arange_down(steps, static_cast<double>(steps) / n)) {
    out.push_back(round_half_even(v) - 1);
  }
  return out;
}

std::string list_preview(const std::vector<long long>& values) {
  std::string text;
  for (std::size_t i = 0; i < values.size() && i < 6; ++i) {
    text += (i ? ", " : "") + std::to_string(values[i]);
  }
  if (values.size() > 6) text += ", ...";
  return text;
}

}  // namespace

void check_timestep_list(const std::vector<long long>& values, int steps, const std::string& what) {
  if (values.empty()) throw Error(what + " is empty");
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0 || values[i] >= steps) {
      throw Error(what + " has timestep " + std::to_string(values[i]) + " outside [0, " +
                  std::to_string(steps) + ") (" + list_preview(values) + ")");
    }
    if (i > 0 && values[i] >= values[i - 1]) {
      throw Error(what + " must be strictly decreasing, but " + std::to_string(values[i - 1]) +
                  " is followed by " + std::to_string(values[i]));
    }
  }
}

std::vector<int> make_timesteps(int steps, const SamplerOptions& o) {
  std::vector<long long> values;
  std::string what;
  if (!o.timesteps.empty()) {
    if (o.num_inference_steps != 0) {
      throw Error("give either inference steps (" + std::to_string(o.num_inference_steps) +
                  ") or an explicit timestep list, not both");
    }
    values.assign(o.timesteps.begin(), o.timesteps.end());
    what = "the timestep list";
  } else if (o.num_inference_steps == 0) {
    for (int t = steps - 1; t >= 0; --t) values.push_back(t);
    what = "the timesteps";
  } else {
    const int n = o.num_inference_steps;
    if (n < 1 || n > steps) {
      throw Error("inference steps " + std::to_string(n) + " is outside [1, T = " +
                  std::to_string(steps) + "]");
    }
    if (o.steps_offset < 0) {
      throw Error("steps offset " + std::to_string(o.steps_offset) + " is negative");
    }
    const TimestepSpacing spacing = spacing_of(o);
    switch (spacing) {
      case TimestepSpacing::linspace: values = linspace_timesteps(steps, n); break;
      case TimestepSpacing::leading: values = leading_timesteps(steps, n, o.steps_offset); break;
      case TimestepSpacing::trailing: values = trailing_timesteps(steps, n); break;
    }
    what = "the " + to_string(spacing) + " timesteps of " + std::to_string(n) +
           " inference steps" +
           (spacing == TimestepSpacing::leading && o.steps_offset != 0
                ? " with steps offset " + std::to_string(o.steps_offset)
                : std::string());
  }
  check_timestep_list(values, steps, what);
  return {values.begin(), values.end()};
}

}  // namespace ddpm::detail
