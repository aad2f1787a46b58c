#pragma once
// Philox4x32-10 (Salmon et al. 2011) exactly as cuRAND computes it, written as
// plain integer code so that the CPU backend can vectorise it. Tests check it
// bit for bit against cuRAND's own host-compiled implementation.
#include <cstdint>

#include "host_device.cuh"

namespace ddpm::kernels {

inline constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;
inline constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;
inline constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;

struct Philox4 {
  std::uint32_t v[4];
};

// counter = (c0, c1, c2, c3) little-endian words; key = (k0, k1).
DDPM_HD Philox4 philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                              std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c2;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32);
    const std::uint32_t lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32);
    const std::uint32_t lo1 = static_cast<std::uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// cuRAND's mapping of a 32-bit output to the open interval (0, 1] used by its
// Box-Muller transform, and of the second output to an angle.
inline constexpr float kTwoPow32Inv = 2.3283064e-10f;        // CURAND_2POW32_INV
inline constexpr float kTwoPow32Inv2Pi = 2.3283064e-10f * 6.2831855f;  // CURAND_2POW32_INV_2PI

DDPM_HD float philox_uniform(std::uint32_t x) { return x * kTwoPow32Inv + (kTwoPow32Inv / 2.0f); }
DDPM_HD float philox_angle(std::uint32_t y) { return y * kTwoPow32Inv2Pi + (kTwoPow32Inv2Pi / 2.0f); }

}  // namespace ddpm::kernels
