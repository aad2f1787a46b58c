// Built instead of the GPU rows when the CUDA toolkit was not found.
#include <ostream>

#include "ddpm/sampler.h"
#include "gpu_bench.h"

namespace ddpm::bench {

GpuInfo query_gpu_info() {
  GpuInfo info;
  info.compiled = false;
  info.usable = false;
  info.unavailable_reason = "ddpm-bench was built without the CUDA toolkit";
  const std::string library_reason = cuda_unavailable_reason();
  if (!library_reason.empty()) info.unavailable_reason += " (" + library_reason + ")";
  return info;
}

std::vector<Row> run_gpu_rows(const GpuBenchOptions&, const GpuInfo&, std::vector<std::string>&,
                              std::ostream&) {
  return {};
}

}  // namespace ddpm::bench
