#pragma once
// The arrays of one CUDA request, as the kernels see them. For a
// Memory::host request every array gets a slot of the engine's device
// workspace (grown when needed, after checking the device has the memory),
// inputs are copied in, and finish() copies the outputs back and waits for
// them. For a Memory::device request the caller's pointers are used after
// checking that they are device memory and that outputs do not partly
// overlap inputs or each other; scratch arrays get workspace slots either way.
//
// A request is ordered after the engine's previous one (its workspace is
// reused): the constructor makes the stream wait for the engine's last-use
// event, and finish() (or, when unwinding, the destructor) records it again.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "ddpm/types.h"
#include "device_buffer.h"
#include "stream.h"

namespace ddpm::detail::cuda {

// The device memory an engine reuses across requests.
class Workspace {
 public:
  explicit Workspace(Event& last_use) : last_use_(last_use) {}
  // Grows the float slots to `floats[i]` and the int slots to `ints[j]`
  // elements, refusing the request (ddpm::Error naming `what` and the MiB
  // needed) before allocating when the device lacks the memory.
  void reserve(const std::vector<std::size_t>& floats, const std::vector<std::size_t>& ints,
               const std::string& what);
  float* floats(std::size_t slot) const { return floats_[slot].data(); }
  std::int32_t* ints(std::size_t slot) const { return ints_[slot].data(); }
  Event& last_use() { return last_use_; }

 private:
  Event& last_use_;
  std::vector<DeviceBuffer<float>> floats_;
  std::vector<DeviceBuffer<std::int32_t>> ints_;
};

struct StagedArray {
  enum class Role { input, output, in_out, scratch };
  Role role = Role::input;
  float* data = nullptr;  // the request's array (null: unused); scratch: none
  std::size_t count = 0;
  const char* name = "";
  bool read = true;  // in_out: whether its contents are read (copied in)

  static StagedArray input(std::span<const float> s, const char* name);
  static StagedArray output(std::span<float> s, const char* name);
  static StagedArray in_out(std::span<float> s, bool read, const char* name);
  static StagedArray scratch(std::size_t count, const char* name);
};

struct StagedInts {
  std::span<const std::int32_t> data;  // empty: unused
  const char* name = "";
};

class Staging {
 public:
  Staging(Workspace& workspace, Memory memory, int device, cudaStream_t stream,
          std::vector<StagedArray> arrays, std::vector<StagedInts> ints, const std::string& what);
  ~Staging();
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // The device pointer of array i (null when it is unused).
  float* operator[](std::size_t i) const { return device_[i]; }
  const std::int32_t* ints(std::size_t j) const { return device_ints_[j]; }
  // Host memory: copies the outputs back and waits for them. Marks the end of
  // the request either way.
  void finish();

 private:
  Workspace& workspace_;
  Memory memory_;
  cudaStream_t stream_;
  std::vector<StagedArray> arrays_;
  std::vector<float*> device_;
  std::vector<const std::int32_t*> device_ints_;
  bool finished_ = false;
};

}  // namespace ddpm::detail::cuda
