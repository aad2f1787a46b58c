#pragma once
// Small value types shared by the public headers.
#include <cstdint>
#include <string>
#include <string_view>

namespace ddpm {

enum class Backend { automatic, cpu, cuda };

// Where the arrays of a request live. Device memory is accepted only by the
// CUDA backend; host memory is accepted by both (the CUDA backend copies).
enum class Memory { host, device };

// sigma_t^2 of the DDPM rule: beta_t (diffusers' "fixed_large", the DDPM
// paper's simple choice) or the posterior variance beta_tilde_t ("fixed_small").
enum class VarianceKind { beta, posterior };

// The reverse-step rule (diffusers' scheduler; k-diffusion's names for the
// solvers): DDPM ancestral sampling (DDPMScheduler), DDIM (DDIMScheduler,
// eta = 0 deterministic), DPM-Solver++(2M) and its SDE variant
// (DPMSolverMultistepScheduler, dpmsolver++ / sde-dpmsolver++, order 2),
// Euler and Euler ancestral (EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler), Heun's second-order method
// (HeunDiscreteScheduler: two model calls per step), DPM-Solver++(3M)
// (DPMSolverMultistepScheduler, dpmsolver++, solver_order 3) and UniPC
// (UniPCMultistepScheduler, bh2 or bh1, its corrector on).
enum class SamplerKind { ddpm, ddim, dpmpp_2m, dpmpp_2m_sde, euler, euler_ancestral, heun, dpmpp_3m, unipc };

// UniPC's B(h) (diffusers' solver_type): e^h - 1 ("bh2", the default) or h ("bh1").
enum class UniPcSolverType { bh2, bh1 };

// What the model predicts (diffusers' prediction_type): the noise eps, the
// clean sample x0, or the velocity v = sqrt(ab) eps - sqrt(1 - ab) x0.
enum class PredictionType { epsilon, sample, v_prediction };

// How num_inference_steps timesteps are picked from [0, T) (diffusers'
// timestep_spacing, Lin et al. 2024, table 2).
enum class TimestepSpacing { leading, trailing, linspace };

// DPM-Solver's sigma after the last step (diffusers' final_sigmas_type).
enum class FinalSigmasType { zero, sigma_min };

// The arithmetic of a network's forward pass (--precision): float32; float32
// with TF32 tensor-core products (CUDA); weights and activations stored in
// float16 or bfloat16 with float accumulation (CUDA).
enum class Precision { fp32, tf32, fp16, bf16 };

// The names used by the CLI, the scheduler config and error messages; the
// parse functions throw ddpm::Error listing the valid names.
std::string to_string(VarianceKind kind);
std::string to_string(SamplerKind kind);
std::string to_string(PredictionType type);
std::string to_string(TimestepSpacing spacing);
std::string to_string(FinalSigmasType type);
std::string to_string(UniPcSolverType type);
std::string to_string(Precision precision);
VarianceKind parse_variance_kind(std::string_view name);  // "beta" | "posterior"
// "ddpm" | "ddim" | "dpmpp_2m" | "dpmpp_2m_sde" | "euler" | "euler_ancestral" | "heun"
// | "dpmpp_3m" | "unipc"
SamplerKind parse_sampler_kind(std::string_view name);
// Every sampler's name, comma-separated, in the order above (for help texts).
std::string sampler_kind_names();
PredictionType parse_prediction_type(std::string_view name);  // "epsilon" | "sample" | "v_prediction"
TimestepSpacing parse_timestep_spacing(std::string_view name);  // "leading" | "trailing" | "linspace"
FinalSigmasType parse_final_sigmas_type(std::string_view name);  // "zero" | "sigma_min"
UniPcSolverType parse_unipc_solver_type(std::string_view name);  // "bh2" | "bh1"
Precision parse_precision(std::string_view name);  // "fp32" | "tf32" | "fp16" | "bf16"

// A batch of `batch` samples with `dim` float elements each, C order.
struct Shape {
  std::int64_t batch = 0;
  std::int64_t dim = 0;
  std::int64_t size() const { return batch * dim; }
};

// Which Gaussian draws a request uses: sample i of the request is global
// sample first_sample + i, so a batch split into runs over [0, k) and [k, N)
// reproduces the whole run bit for bit.
struct NoiseKey {
  std::uint64_t seed = 0;
  std::int64_t first_sample = 0;
};

struct ClipRange {
  float lo = -1.0f;
  float hi = 1.0f;
};

}  // namespace ddpm
