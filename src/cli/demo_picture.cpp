#include "demo_picture.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace ddpm::cli {
namespace {

struct Rgb {
  float r, g, b;  // in [0, 1]
};

Rgb mix(Rgb a, Rgb b, float t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

// The scene at (u, v) in [0, 1)^2, v downwards. Everything is a function of
// the continuous coordinates, so any --size draws the same picture.
Rgb scene(float u, float v) {
  constexpr float kPi = std::numbers::pi_v<float>;
  const Rgb zenith{0.10f, 0.25f, 0.65f};
  const Rgb horizon{0.95f, 0.75f, 0.55f};
  Rgb colour = mix(zenith, horizon, std::clamp(v / 0.6f, 0.0f, 1.0f));

  // The sun, with a soft glow around its disc.
  const float du = u - 0.70f, dv = v - 0.30f;
  const float distance = std::sqrt(du * du + dv * dv);
  const Rgb sun{1.0f, 0.85f, 0.20f};
  if (distance < 0.13f) {
    colour = sun;
  } else if (distance < 0.22f) {
    colour = mix(colour, sun, 0.5f * (0.22f - distance) / 0.09f);
  }

  // Rolling hills, and a ploughed field in front with stripes that
  // converge towards the horizon.
  const float hill_top = 0.58f + 0.06f * std::sin(u * 2.0f * kPi * 1.3f + 0.8f);
  if (v > hill_top) colour = {0.15f, 0.45f, 0.20f};
  const float field_top = 0.72f;
  if (v > field_top) {
    const float depth = (v - field_top) / (1.0f - field_top);  // 0 far, 1 near
    const float across = (u - 0.5f) / (0.3f + 0.7f * depth);
    const bool dark = std::fmod(across * 6.0f + 100.0f, 1.0f) < 0.5f;
    colour = dark ? Rgb{0.45f, 0.28f, 0.12f} : Rgb{0.85f, 0.70f, 0.25f};
  }
  return colour;
}

}  // namespace

std::vector<float> make_demo_picture(int size) {
  std::vector<float> pixels(static_cast<std::size_t>(size) * size * 3);
  float* out = pixels.data();
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const Rgb c = scene((x + 0.5f) / size, (y + 0.5f) / size);
      for (float channel : {c.r, c.g, c.b}) *out++ = 2.0f * channel - 1.0f;
    }
  }
  return pixels;
}

}  // namespace ddpm::cli
