#pragma once
// Shared by the GPU row files: the run's context and the helpers that size,
// place and label a benchmark's buffers.
#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "ddpm/ddpm.h"
#include "format.h"
#include "gpu_bench.h"
#include "gpu_common.h"
#include "timing.h"

namespace ddpm::bench {

// Each repetition walks through enough copies of a row's buffers to move at
// least this many times the L2's size, so no call finds its data in L2.
inline constexpr std::size_t kRotationL2Multiple = 2;
inline constexpr int kMaxRotationCopies = 1024;
// Left free when deciding whether a size fits.
inline constexpr std::size_t kMemoryMargin = std::size_t{512} << 20;

struct GpuContext {
  const GpuBenchOptions& options;
  const GpuInfo& info;
  std::vector<std::string>& notes;
  std::ostream& progress;
  Stream stream;
  L2Flusher flusher;
  std::map<std::int64_t, Row> copies;  // bytes moved -> the D2D copy row, measured once

  GpuContext(const GpuBenchOptions& o, const GpuInfo& i, std::vector<std::string>& n,
             std::ostream& p)
      : options(o), info(i), notes(n), progress(p), flusher(static_cast<std::size_t>(i.l2_bytes)) {}
  void* stream_handle() const { return static_cast<void*>(stream.get()); }
  TimingPlan plan(int calls) const {
    return TimingPlan{options.warmup, options.repetitions, calls};
  }
};

// How many copies of a `set_bytes` working set one repetition rotates through.
int rotation_copies(std::size_t set_bytes, std::size_t l2_bytes);

// Empty when `bytes` fit in free device memory with the margin; otherwise why not.
std::string check_fits(std::size_t bytes);

// A [batch, dim] shape for n elements: 3x64x64 images where n is a multiple
// of 12288, rows of 4096 where n is a multiple of 4096, else one row.
Shape shape_for(std::int64_t elements);
std::string shape_text(const Shape& shape);

// A row that was not run, with the reason.
Row skipped_row(std::string section, std::string kernel, std::string label, std::int64_t elements,
                double bytes_per_element, std::string why);

// The D2D copy GB/s for `bytes_moved` (read + write), measured on first use;
// 0 when it does not fit.
double copy_reference(GpuContext& context, std::int64_t bytes_moved);
// The copy rows measured so far, for the report.
std::vector<Row> copy_rows(const GpuContext& context);

// Checks run before any timing; throw ddpm::Error on a mismatch.
void check_gpu_paths(GpuContext& context);

std::vector<Row> run_ladder_rows(GpuContext& context);
std::vector<Row> run_loop_rows(GpuContext& context);

}  // namespace ddpm::bench
