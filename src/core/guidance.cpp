#include "guidance.h"

#include <cmath>
#include <sstream>

#include "ddpm/error.h"

namespace ddpm::detail {

bool guided(const SampleRequest& r) { return r.guidance_scale != 1.0; }

namespace {
bool analytic(const NoisePredictor& p) {
  return dynamic_cast<const GaussianPredictor*>(&p) != nullptr ||
         dynamic_cast<const GmmPredictor*>(&p) != nullptr;
}
}  // namespace

void check_guidance(const SampleRequest& r, const NoisePredictor& predictor) {
  if (!std::isfinite(r.guidance_scale)) {
    std::ostringstream msg;
    msg << "guidance scale " << r.guidance_scale << " is not finite";
    throw Error(msg.str());
  }
  if (!(r.guidance_rescale >= 0.0 && std::isfinite(r.guidance_rescale))) {
    std::ostringstream msg;
    msg << "guidance rescale " << r.guidance_rescale << " must be a finite number >= 0 (0.7 in Lin et al.)";
    throw Error(msg.str());
  }
  if (!guided(r)) {
    if (r.guidance_rescale != 0.0) throw Error("guidance rescale needs a guidance scale other than 1");
    return;
  }
  if (!predictor.unconditional_label()) {
    throw Error("classifier-free guidance needs an unconditional model, and this predictor has none "
                "(a class-conditional network with a null label, or an unconditional prior)");
  }
  if (r.class_labels.empty() && !analytic(predictor)) {
    throw Error("classifier-free guidance needs the class labels of the conditional rows");
  }
}

std::vector<std::int32_t> guided_labels(const std::vector<std::int32_t>& conditional,
                                        std::int64_t batch, const NoisePredictor& predictor) {
  std::vector<std::int32_t> labels = conditional;
  labels.resize(static_cast<std::size_t>(batch), 0);
  labels.resize(static_cast<std::size_t>(2 * batch), *predictor.unconditional_label());
  return labels;
}

float guidance_rescale_factor(const float* c, const float* u, std::int64_t dim, double scale,
                              double rescale) {
  double sum_c = 0, sum_cc = 0, sum_g = 0, sum_gg = 0;
  for (std::int64_t i = 0; i < dim; ++i) {
    const double g = u[i] + scale * (static_cast<double>(c[i]) - u[i]);
    sum_c += c[i];
    sum_cc += static_cast<double>(c[i]) * c[i];
    sum_g += g;
    sum_gg += g * g;
  }
  const double n = static_cast<double>(dim);
  const double var_c = std::max(0.0, sum_cc - sum_c * sum_c / n);
  const double var_g = std::max(0.0, sum_gg - sum_g * sum_g / n);
  if (var_g == 0.0) return 1.0f;
  return static_cast<float>(rescale * std::sqrt(var_c / var_g) + (1.0 - rescale));
}

}  // namespace ddpm::detail
