#include "staging.h"

#include <algorithm>

#include "check.h"
#include "ddpm/error.h"
#include "device_checks.h"

namespace ddpm::detail::cuda {

void Workspace::reserve(const std::vector<std::size_t>& floats,
                        const std::vector<std::size_t>& ints, const std::string& what) {
  if (floats_.size() < floats.size()) floats_.resize(floats.size());
  if (ints_.size() < ints.size()) ints_.resize(ints.size());
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < floats.size(); ++i) {
    if (floats[i] > floats_[i].count()) bytes += floats[i] * sizeof(float);
  }
  for (std::size_t j = 0; j < ints.size(); ++j) {
    if (ints[j] > ints_[j].count()) bytes += ints[j] * sizeof(std::int32_t);
  }
  if (bytes == 0) return;
  last_use_.synchronize();  // the buffers about to be replaced may still be in use
  for (std::size_t i = 0; i < floats.size(); ++i) {
    if (floats[i] > floats_[i].count()) floats_[i].release();
  }
  for (std::size_t j = 0; j < ints.size(); ++j) {
    if (ints[j] > ints_[j].count()) ints_[j].release();
  }
  require_free_memory(bytes, what);
  for (std::size_t i = 0; i < floats.size(); ++i) floats_[i].reserve(floats[i], what);
  for (std::size_t j = 0; j < ints.size(); ++j) ints_[j].reserve(ints[j], what);
}

StagedArray StagedArray::input(std::span<const float> s, const char* name) {
  return {Role::input, const_cast<float*>(s.data()), s.size(), name, true};
}
StagedArray StagedArray::output(std::span<float> s, const char* name) {
  return {Role::output, s.data(), s.size(), name, false};
}
StagedArray StagedArray::in_out(std::span<float> s, bool read, const char* name) {
  return {Role::in_out, s.data(), s.size(), name, read};
}
StagedArray StagedArray::scratch(std::size_t count, const char* name) {
  return {Role::scratch, nullptr, count, name, false};
}

namespace {
using Role = StagedArray::Role;
bool used(const StagedArray& a) { return a.role == Role::scratch ? a.count > 0 : a.data != nullptr; }
bool writes(const StagedArray& a) { return a.role == Role::output || a.role == Role::in_out; }
bool reads(const StagedArray& a) { return a.role == Role::input || (a.role == Role::in_out && a.read); }
}  // namespace

Staging::Staging(Workspace& workspace, Memory memory, int device, cudaStream_t stream,
                 std::vector<StagedArray> arrays, std::vector<StagedInts> ints,
                 const std::string& what)
    : workspace_(workspace), memory_(memory), stream_(stream), arrays_(std::move(arrays)) {
  const bool host = memory == Memory::host;
  // Slots: every used array on the host path, scratch arrays on both.
  std::vector<std::size_t> floats(arrays_.size(), 0), int_counts(ints.size(), 0);
  for (std::size_t i = 0; i < arrays_.size(); ++i) {
    const StagedArray& a = arrays_[i];
    if (used(a) && (host || a.role == Role::scratch)) floats[i] = a.count;
  }
  for (std::size_t j = 0; j < ints.size(); ++j) {
    if (host) int_counts[j] = ints[j].data.size();
  }
  if (!host) {
    for (const StagedArray& a : arrays_) {
      if (a.role != Role::scratch) check_device_pointer(a.data, device, a.name);
    }
    for (const StagedInts& s : ints) check_device_pointer(s.data.data(), device, s.name);
    std::vector<const StagedArray*> outputs;
    for (const StagedArray& out : arrays_) {
      if (!used(out) || !writes(out)) continue;
      outputs.push_back(&out);
      for (const StagedArray& in : arrays_) {
        if (used(in) && reads(in) && &in != &out) {
          check_overlap(out.data, in.data, out.count, out.name, in.name);
        }
      }
    }
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      for (std::size_t k = i + 1; k < outputs.size(); ++k) {
        check_disjoint({outputs[i]->data, outputs[k]->data},
                       std::max(outputs[i]->count, outputs[k]->count));
      }
    }
  }
  workspace_.reserve(floats, int_counts, what);
  workspace_.last_use().wait_on(stream_);
  device_.resize(arrays_.size(), nullptr);
  for (std::size_t i = 0; i < arrays_.size(); ++i) {
    const StagedArray& a = arrays_[i];
    if (!used(a)) continue;
    if (floats[i] == 0) {
      device_[i] = a.data;
      continue;
    }
    device_[i] = workspace_.floats(i);
    if (host && reads(a)) {
      DDPM_CUDA_CHECK(cudaMemcpyAsync(device_[i], a.data, a.count * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));
    }
  }
  device_ints_.resize(ints.size(), nullptr);
  for (std::size_t j = 0; j < ints.size(); ++j) {
    if (ints[j].data.empty()) continue;
    if (!host) {
      device_ints_[j] = ints[j].data.data();
      continue;
    }
    device_ints_[j] = workspace_.ints(j);
    DDPM_CUDA_CHECK(cudaMemcpyAsync(workspace_.ints(j), ints[j].data.data(),
                                    ints[j].data.size_bytes(), cudaMemcpyHostToDevice, stream_));
  }
}

Staging::~Staging() {
  // Unwinding with work queued: still mark where this request ends (best effort).
  if (!finished_) cudaEventRecord(workspace_.last_use().get(), stream_);
}

void Staging::finish() {
  if (memory_ == Memory::host) {
    for (std::size_t i = 0; i < arrays_.size(); ++i) {
      const StagedArray& a = arrays_[i];
      if (used(a) && writes(a)) {
        DDPM_CUDA_CHECK(cudaMemcpyAsync(a.data, device_[i], a.count * sizeof(float),
                                        cudaMemcpyDeviceToHost, stream_));
      }
    }
  }
  workspace_.last_use().record(stream_);
  finished_ = true;
  if (memory_ == Memory::host) DDPM_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace ddpm::detail::cuda
