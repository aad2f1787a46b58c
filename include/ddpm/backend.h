#pragma once
// Which backends this build and machine have, and the machine facts a
// front end sizes its work by.
#include <cstdint>
#include <string>

#include "ddpm/types.h"

namespace ddpm {

// True when the CUDA backend is compiled in and a device is usable.
bool cuda_available();
// Why cuda_available() is false, in one line (empty when it is true).
std::string cuda_unavailable_reason();
std::string to_string(Backend backend);
Backend parse_backend(const std::string& name);  // "auto" | "cpu" | "cuda"

// Makes device local_rank % (the number of devices) this thread's current
// device, so that each rank of a distributed run on a machine takes its own
// GPU (round robin), before any Sampler is built; returns the device, or -1
// (and changes nothing) when no device can be counted.
int select_cuda_device(int local_rank);
// Free memory of the current CUDA device in bytes; 0 when there is none.
std::uint64_t cuda_free_memory_bytes();
// The CPU backend's kernel set on this processor ("avx2", "generic").
std::string cpu_kernels_name();

// Physical memory of this machine in bytes (a large number when unknown):
// the ceiling for an allocation an input file asks for.
std::uint64_t physical_memory_bytes();
// Memory that can be allocated now without swapping (MemAvailable of
// /proc/meminfo; physical_memory_bytes() where that is unknown).
std::uint64_t available_memory_bytes();
// "64 MiB", "3.2 GiB": sizes in messages.
std::string describe_bytes(double bytes);

}  // namespace ddpm
