#pragma once
// Hands out regions of the constant-memory schedule arena
// (kernels/constant_schedule.cuh) to CUDA engines: first fit, in 256-byte
// aligned blocks, one arena per device, thread-safe. An engine takes its
// region at construction and gives it back in its destructor; when no region
// is free (or the schedule is too large for the arena) the engine reads its
// schedule from global memory instead, with the same results.
#include <utility>

namespace ddpm::detail::cuda {

class ConstantRegion {
 public:
  ConstantRegion() = default;
  // A region of `floats` floats on `device`, or an empty region when none is free.
  static ConstantRegion acquire(int device, int floats);
  ~ConstantRegion() { release(); }
  ConstantRegion(const ConstantRegion&) = delete;
  ConstantRegion& operator=(const ConstantRegion&) = delete;
  ConstantRegion(ConstantRegion&& other) noexcept
      : device_(other.device_), offset_(std::exchange(other.offset_, -1)), size_(other.size_) {}
  ConstantRegion& operator=(ConstantRegion&& other) noexcept {
    if (this != &other) {
      release();
      device_ = other.device_;
      offset_ = std::exchange(other.offset_, -1);
      size_ = other.size_;
    }
    return *this;
  }

  bool valid() const { return offset_ >= 0; }
  int offset() const { return offset_; }  // in floats; -1 when empty
  void release() noexcept;

 private:
  int device_ = 0;
  int offset_ = -1;
  int size_ = 0;  // floats reserved (rounded up to the alignment)
};

struct ConstantArenaStats {
  int capacity_floats = 0;
  int used_floats = 0;
  int regions = 0;
};
ConstantArenaStats constant_arena_stats(int device);

}  // namespace ddpm::detail::cuda
