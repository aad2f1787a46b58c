#pragma once
// Branch-free float log and sincos for the CPU backend's Box-Muller transform,
// written so that GCC vectorises loops that call them (libm calls stop the
// vectoriser). Cephes' single-precision polynomials (Moshier), accurate to a
// couple of ulp on the ranges used here: log on (0, 1], sincos on (0, 2 pi).
// cuRAND's device path uses logf and __sincosf, so the two backends agree to
// about 1e-6, not bit for bit; the Philox integers themselves are identical.
#include <bit>
#include <cstdint>

namespace ddpm::cpu {

// Natural log of a positive normal float.
[[gnu::always_inline]] inline float fast_log(float v) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(v);
  int exponent = static_cast<int>(bits >> 23) - 126;
  float m = std::bit_cast<float>((bits & 0x007FFFFFu) | 0x3F000000u);  // [0.5, 1)
  // Below sqrt(1/2) use 2m - 1 and one less in the exponent. Written with
  // arithmetic on 0/1 rather than a select, which GCC will not if-convert here.
  const int small = m < 0.70710678118654752f;
  exponent -= small;
  const float x = (m - 1.0f) + static_cast<float>(small) * m;
  const float z = x * x;
  float p = 7.0376836292e-2f;
  p = p * x - 1.1514610310e-1f;
  p = p * x + 1.1676998740e-1f;
  p = p * x - 1.2420140846e-1f;
  p = p * x + 1.4249322787e-1f;
  p = p * x - 1.6668057665e-1f;
  p = p * x + 2.0000714765e-1f;
  p = p * x - 2.4999993993e-1f;
  p = p * x + 3.3333331174e-1f;
  const float e = static_cast<float>(exponent);
  float y = p * x * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return x + y + 0.693359375f * e;
}

// sin and cos of v in [0, 2 pi], by octant reduction (Cody-Waite, 3 parts).
[[gnu::always_inline]] inline void fast_sincos(float v, float& sin_out, float& cos_out) {
  constexpr float kFourOverPi = 1.27323954473516f;
  int j = static_cast<int>(v * kFourOverPi);
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  const float x = ((v - y * 0.78515625f) - y * 2.4187564849853515625e-4f) -
                  y * 3.77489497744594108e-8f;
  const float z = x * x;
  const float s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
  const float c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z +
                   4.166664568298827e-2f) * z * z - 0.5f * z + 1.0f;
  const int quadrant = (j >> 1) & 3;
  const float sin_abs = (quadrant & 1) ? c : s;
  const float cos_abs = (quadrant & 1) ? s : c;
  sin_out = (quadrant >= 2) ? -sin_abs : sin_abs;
  cos_out = (quadrant == 1 || quadrant == 2) ? -cos_abs : cos_abs;
}

}  // namespace ddpm::cpu
