#pragma once
// The generic reverse update that every step rule runs (src/rules/ fill its
// coefficients), per element, shared by the CPU backend and the CUDA kernels.
// With m the model output at timestep t (eps, x0 or v by prediction type):
//
//   x0_hat  = x0_from_sample * x_t + x0_from_model * m,   clipped or thresholded
//   eps_hat = eps_from_sample * x_t + eps_from_model * m
//   x_prev  = prev_from_x0 * x0_hat + prev_from_eps * eps_hat + prev_from_sample * x_t
//           + prev_from_x0_prev * x0_prev + sigma * z
// where x0_prev is the previous step's x0_hat (multistep solvers' history;
// the weight is 0 elsewhere). With classifier-free guidance m itself is
// u + w (c - u) of the conditional and unconditional outputs (guided_output).
//
// Without x0 processing the update is linear in (x_t, m, x0_prev), so it is
// folded on the host into x_prev = folded_sample * x_t + folded_model * m +
// prev_from_x0_prev * x0_prev + sigma * z.
// Forming x0_hat from (x_t, m) is ill conditioned where the prediction
// type makes it so:
// with epsilon prediction x0 = (x_t - sqrt(1 - ab) m) / sqrt(ab) amplifies
// rounding by 1/sqrt(ab) (157 at the end of the linear schedule, 2e4 for the
// cosine one). So x0_hat and eps_hat are formed as scale * (p x_t + q m)
// with max(|p|, |q|) = 1: the larger term is exact and the difference is
// taken before the amplification, as diffusers' (x_t - b m) / a does. An
// analytic prior fused into the step knows x0_hat and eps_hat themselves
// and uses them directly (step_from_posterior), which is well conditioned
// whatever the prediction type.
//
// Records. A kernel reads one StepRecord per step, packed in one of two
// layouts (the arena of constant_schedule.cuh holds whichever the loop uses):
//   plain, 9 floats:  folded_sample, folded_model, prev_from_x0, prev_from_eps, prev_from_sample,
//                     prev_from_x0_prev, sigma, sqrt_alpha_bar, sqrt_one_minus_alpha_bar
//   full, 13 floats:  x0_scale, x0_from_sample, x0_from_model, eps_scale, eps_from_sample,
//                     eps_from_model, prev_from_x0, prev_from_eps, prev_from_sample,
//                     prev_from_x0_prev, sigma, sqrt_alpha_bar, sqrt_one_minus_alpha_bar
// sqrt_alpha_bar and sqrt_one_minus_alpha_bar (of the step's timestep) serve
// the analytic predictors fused into the step.
#include "host_device.cuh"

namespace ddpm::kernels {

struct StepRecord {
  float x0_scale, x0_from_sample, x0_from_model;     // x0_hat = x0_scale (p x_t + q m)
  float eps_scale, eps_from_sample, eps_from_model;  // eps_hat likewise
  float prev_from_x0, prev_from_eps, prev_from_sample;
  float prev_from_x0_prev;  // the multistep term (0 on first-order steps)
  float sigma;
  float folded_sample, folded_model;
  float sqrt_alpha_bar, sqrt_one_minus_alpha_bar;
};

// What happens to x0_hat before the update.
enum class X0Mode : int { none = 0, clip = 1, threshold = 2 };

inline constexpr int kRecordWidthPlain = 9;
inline constexpr int kRecordWidthFull = 13;

// The full layout is needed whenever x0_hat itself is formed: to process it,
// or to hand it back (pred_original_sample).
DDPM_HD constexpr int record_width(bool full) { return full ? kRecordWidthFull : kRecordWidthPlain; }

// Writes record_width(full) floats to `out`.
DDPM_HD void pack_step_record(const StepRecord& r, bool full, float* out) {
  if (full) {
    out[0] = r.x0_scale;
    out[1] = r.x0_from_sample;
    out[2] = r.x0_from_model;
    out[3] = r.eps_scale;
    out[4] = r.eps_from_sample;
    out[5] = r.eps_from_model;
    out[6] = r.prev_from_x0;
    out[7] = r.prev_from_eps;
    out[8] = r.prev_from_sample;
    out[9] = r.prev_from_x0_prev;
    out[10] = r.sigma;
    out[11] = r.sqrt_alpha_bar;
    out[12] = r.sqrt_one_minus_alpha_bar;
  } else {
    out[0] = r.folded_sample;
    out[1] = r.folded_model;
    out[2] = r.prev_from_x0;
    out[3] = r.prev_from_eps;
    out[4] = r.prev_from_sample;
    out[5] = r.prev_from_x0_prev;
    out[6] = r.sigma;
    out[7] = r.sqrt_alpha_bar;
    out[8] = r.sqrt_one_minus_alpha_bar;
  }
}

// `p` holds record_width(Full) floats, already loaded; unused fields are 0.
template <bool Full>
DDPM_HD StepRecord unpack_step_record(const float* p) {
  StepRecord r{};
  if constexpr (Full) {
    r.x0_scale = p[0];
    r.x0_from_sample = p[1];
    r.x0_from_model = p[2];
    r.eps_scale = p[3];
    r.eps_from_sample = p[4];
    r.eps_from_model = p[5];
    r.prev_from_x0 = p[6];
    r.prev_from_eps = p[7];
    r.prev_from_sample = p[8];
    r.prev_from_x0_prev = p[9];
    r.sigma = p[10];
    r.sqrt_alpha_bar = p[11];
    r.sqrt_one_minus_alpha_bar = p[12];
  } else {
    r.folded_sample = p[0];
    r.folded_model = p[1];
    r.prev_from_x0 = p[2];
    r.prev_from_eps = p[3];
    r.prev_from_sample = p[4];
    r.prev_from_x0_prev = p[5];
    r.sigma = p[6];
    r.sqrt_alpha_bar = p[7];
    r.sqrt_one_minus_alpha_bar = p[8];
  }
  return r;
}

DDPM_HD float clamp_to(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

DDPM_HD float predicted_x0(float x, float m, const StepRecord& r) {
  return r.x0_scale * (r.x0_from_sample * x + r.x0_from_model * m);
}

DDPM_HD float predicted_eps(float x, float m, const StepRecord& r) {
  return r.eps_scale * (r.eps_from_sample * x + r.eps_from_model * m);
}

// Clipping to [lo, hi], or thresholding at s = `scale`: clamp to [-s, s], then / s.
template <X0Mode Mode>
DDPM_HD float process_x0(float x0, float lo, float hi, float scale) {
  if constexpr (Mode == X0Mode::clip) return clamp_to(x0, lo, hi);
  if constexpr (Mode == X0Mode::threshold) return clamp_to(x0, -scale, scale) / scale;
  return x0;
}

// x_prev from the (processed) x0_hat and eps_hat, and the previous step's
// x0_hat (multistep solvers; pass x0 itself where there is none).
DDPM_HD float step_from_posterior(float x, float x0, float eps, float x0_prev, float z,
                                  const StepRecord& r) {
  return r.prev_from_x0 * x0 + r.prev_from_eps * eps + r.prev_from_sample * x +
         r.prev_from_x0_prev * x0_prev + r.sigma * z;
}

// x_prev from the (processed) x0_hat and the model output.
DDPM_HD float step_from_x0(float x, float m, float x0, float x0_prev, float z, const StepRecord& r) {
  return step_from_posterior(x, x0, predicted_eps(x, m, r), x0_prev, z, r);
}

// x_prev without x0 processing (plain records).
DDPM_HD float step_folded(float x, float m, float x0_prev, float z, const StepRecord& r) {
  return r.folded_sample * x + r.folded_model * m + r.prev_from_x0_prev * x0_prev + r.sigma * z;
}

// The rules with a deeper history (dpmpp_3m, unipc, heun): their step reads
// the x0_hats of up to three earlier steps (h1, h2, h3: one, two, three steps
// back) and the previous step's sample `last` (and DPM-Solver++(3M) SDE adds
// sigma z). UniPC's
// corrector first replaces x_t by
//   x_c = corrected_from_last_sample * last + corrected_from_x0 * x0
//       + sum_k corrected_from_x0_prev[k] * h_{k+1},
// then the update is
//   x_prev = prev_from_sample * x_c + prev_from_x0 * x0 + prev_from_eps * eps
//          + prev_from_last_sample * last + prev_from_x0_prev[0] * h1 + prev_from_x0_prev[1] * h2
//          + sigma * z
// and x_c becomes the next step's `last` (x_c = x_t without a corrector).
struct DeepRecord {
  float prev_from_x0, prev_from_eps, prev_from_sample, prev_from_last_sample;
  float prev_from_x0_prev[2];
  bool corrects;
  float corrected_from_last_sample, corrected_from_x0;
  float corrected_from_x0_prev[3];
  float sigma;
};

DDPM_HD float deep_base(float x, float x0, float h1, float h2, float h3, float last, const DeepRecord& d) {
  if (!d.corrects) return x;
  return d.corrected_from_last_sample * last + d.corrected_from_x0 * x0 + d.corrected_from_x0_prev[0] * h1 +
         d.corrected_from_x0_prev[1] * h2 + d.corrected_from_x0_prev[2] * h3;
}

DDPM_HD float deep_update(float base, float x0, float eps, float h1, float h2, float last, const DeepRecord& d) {
  return d.prev_from_sample * base + d.prev_from_x0 * x0 + d.prev_from_eps * eps +
         d.prev_from_last_sample * last + d.prev_from_x0_prev[0] * h1 + d.prev_from_x0_prev[1] * h2;
}

// The loop history of a deep rule at one element: the x0_hats of one, two
// and three steps back and the previous sample, each null where the rule's
// layout has no such slot.
struct DeepSlots {
  float* h1;
  float* h2;
  float* h3;
  float* last;
};

// One element of a deep rule's step, shared by the CPU backend and the CUDA
// kernel: x0_hat from the model output m (after clipping or thresholding at
// `scale`), the corrector, the update (z: the step's normal, used where
// sigma != 0), then the history's shift. A slot the
// step gives no weight is not read (it may hold anything: 0 * NaN is NaN).
// Returns x_prev; writes x0_hat to *x0_out when set.
DDPM_HD float deep_step_element(float x, float m, float z, const StepRecord& r, const DeepRecord& d, X0Mode mode,
                                float lo, float hi, float scale, float* x0_out, DeepSlots s) {
  float x0 = predicted_x0(x, m, r);
  if (mode == X0Mode::clip) x0 = process_x0<X0Mode::clip>(x0, lo, hi, scale);
  if (mode == X0Mode::threshold) x0 = process_x0<X0Mode::threshold>(x0, lo, hi, scale);
  const float eps = d.prev_from_eps != 0.0f ? predicted_eps(x, m, r) : 0.0f;
  const bool reads_h1 = d.prev_from_x0_prev[0] != 0.0f || d.corrected_from_x0_prev[0] != 0.0f;
  const bool reads_h2 = d.prev_from_x0_prev[1] != 0.0f || d.corrected_from_x0_prev[1] != 0.0f;
  const bool reads_h3 = d.corrected_from_x0_prev[2] != 0.0f;
  const bool reads_last = d.prev_from_last_sample != 0.0f || d.corrects;
  const float h1 = reads_h1 ? *s.h1 : 0.0f, h2 = reads_h2 ? *s.h2 : 0.0f;
  const float h3 = reads_h3 ? *s.h3 : 0.0f, last = reads_last ? *s.last : 0.0f;
  const float base = deep_base(x, x0, h1, h2, h3, last, d);
  const float next = deep_update(base, x0, eps, h1, h2, last, d) + d.sigma * z;
  if (x0_out != nullptr) *x0_out = x0;
  if (s.h3 != nullptr) *s.h3 = *s.h2;
  if (s.h2 != nullptr) *s.h2 = *s.h1;
  if (s.h1 != nullptr) *s.h1 = x0;
  if (s.last != nullptr) *s.last = base;
  return next;
}

// Classifier-free guidance: u + w (c - u), scaled by the row's rescale
// factor (1 without guidance_rescale).
DDPM_HD float guided_output(float conditional, float unconditional, float scale, float factor) {
  return factor * (unconditional + scale * (conditional - unconditional));
}

// The weights (w_eps, w_x0) that turn the exact posterior means E[eps | x_t]
// and E[x0 | x_t] of an analytic predictor into its output in the asked
// prediction type (0 epsilon, 1 sample, 2 v_prediction): m = w_eps eps + w_x0 x0.
struct OutputWeights {
  float from_eps;
  float from_x0;
};
DDPM_HD OutputWeights output_weights(int prediction_type, float sqrt_alpha_bar,
                                     float sqrt_one_minus_alpha_bar) {
  if (prediction_type == 1) return {0.0f, 1.0f};
  if (prediction_type == 2) return {sqrt_alpha_bar, -sqrt_one_minus_alpha_bar};
  return {1.0f, 0.0f};
}

}  // namespace ddpm::kernels
