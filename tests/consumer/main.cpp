// Samples a small batch through the installed library and checks the result
// is finite and centred on the prior mean.
#include <ddpm/ddpm.h>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  ddpm::Sampler sampler(ddpm::Schedule::linear(), {.backend = ddpm::Backend::cpu});
  ddpm::GaussianPredictor predictor({.mean = 0.5f, .std = 0.3f});
  std::vector<float> x(64 * 512);
  sampler.sample({.x = x, .shape = {64, 512}, .noise = {.seed = 1}}, predictor);
  double sum = 0;
  for (float v : x) sum += v;
  const double mean = sum / x.size();
  std::printf("consumer: mean %.4f\n", mean);
  return std::isfinite(mean) && std::abs(mean - 0.5) < 0.01 ? 0 : 1;
}
