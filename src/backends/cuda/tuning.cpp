#include "tuning.h"

#include <map>
#include <mutex>
#include <string>

#include "check.h"
#include "ddpm/error.h"

namespace ddpm::detail::cuda {
namespace {

std::mutex& tuning_mutex() {
  static std::mutex mutex;
  return mutex;
}

Tuning& current_tuning() {
  static Tuning tuning;
  return tuning;
}

}  // namespace

Tuning tuning() {
  std::lock_guard lock(tuning_mutex());
  return current_tuning();
}

void set_tuning(const Tuning& tuning) {
  if (tuning.block_size < 32 || tuning.block_size > kernels::kMaxBlockSize ||
      tuning.block_size % 32 != 0) {
    throw Error("CUDA block size " + std::to_string(tuning.block_size) +
                " is invalid: need a multiple of 32 in [32, " +
                std::to_string(kernels::kMaxBlockSize) + "]");
  }
  if (tuning.max_blocks < 0) throw Error("CUDA grid cap must be >= 0");
  std::lock_guard lock(tuning_mutex());
  current_tuning() = tuning;
}

int multiprocessor_count(int device) {
  static std::mutex mutex;
  static std::map<int, int> counts;
  std::lock_guard lock(mutex);
  auto it = counts.find(device);
  if (it == counts.end()) {
    int count = 0;
    DDPM_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    it = counts.emplace(device, count).first;
  }
  return it->second;
}

kernels::LaunchConfig launch_config(int device) {
  const Tuning t = tuning();
  kernels::LaunchConfig config;
  config.block_size = t.block_size;
  config.vectorize = t.vectorize;
  // One full wave: 2048 resident threads per SM on sm_80 and sm_90 at the
  // register counts of these kernels (<= 40).
  config.max_blocks =
      t.max_blocks > 0 ? t.max_blocks : multiprocessor_count(device) * (2048 / t.block_size);
  return config;
}

}  // namespace ddpm::detail::cuda
