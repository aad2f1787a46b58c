#pragma once
// Small value types shared by the public headers.
#include <cstdint>

namespace ddpm {

enum class Backend { automatic, cpu, cuda };

// Where the arrays of a request live. Device memory is accepted only by the
// CUDA backend; host memory is accepted by both (the CUDA backend copies).
enum class Memory { host, device };

// sigma_t^2 in the reverse step: beta_t (the DDPM paper's simple choice) or
// the posterior variance beta_tilde_t.
enum class VarianceKind { beta, posterior };

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
