#include "constant_arena.h"

#include <map>
#include <mutex>
#include <vector>

#include "kernels/launch.h"

namespace ddpm::detail::cuda {
namespace {

// 64 floats = 256 bytes: no two engines share a constant-cache line.
constexpr int kAlignFloats = 64;

struct Arena {
  std::vector<std::pair<int, int>> used;  // (offset, size), sorted by offset
};

// Never destroyed: an engine that outlives static destruction (a global
// Sampler) can still give its region back.
std::mutex& arena_mutex() {
  static auto* mutex = new std::mutex;
  return *mutex;
}

std::map<int, Arena>& arenas() {
  static auto* map = new std::map<int, Arena>;
  return *map;
}

}  // namespace

ConstantRegion ConstantRegion::acquire(int device, int floats) {
  ConstantRegion region;
  region.device_ = device;
  const int capacity = kernels::constant_arena_floats();
  if (floats <= 0 || floats > capacity) return region;
  const int size = (floats + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  std::lock_guard lock(arena_mutex());
  Arena& arena = arenas()[device];
  int candidate = 0;
  auto it = arena.used.begin();
  for (; it != arena.used.end(); ++it) {
    if (candidate + size <= it->first) break;
    candidate = it->first + it->second;
  }
  if (candidate + size > capacity) return region;
  arena.used.insert(it, {candidate, size});
  region.offset_ = candidate;
  region.size_ = size;
  return region;
}

void ConstantRegion::release() noexcept {
  if (offset_ < 0) return;
  std::lock_guard lock(arena_mutex());
  auto& used = arenas()[device_].used;
  for (auto it = used.begin(); it != used.end(); ++it) {
    if (it->first == offset_) {
      used.erase(it);
      break;
    }
  }
  offset_ = -1;
}

ConstantArenaStats constant_arena_stats(int device) {
  std::lock_guard lock(arena_mutex());
  ConstantArenaStats stats;
  stats.capacity_floats = kernels::constant_arena_floats();
  for (const auto& [offset, size] : arenas()[device].used) {
    stats.used_floats += size;
    ++stats.regions;
  }
  return stats;
}

}  // namespace ddpm::detail::cuda
