// The GPU rows: checks first, then the kernel ladder and the whole loops, and
// the device-to-device copy every bandwidth figure is compared with.
#include <cmath>
#include <cstdio>

#include "gpu_internal.h"

namespace ddpm::bench {

int rotation_copies(std::size_t set_bytes, std::size_t l2_bytes) {
  if (set_bytes == 0) return 1;
  const std::size_t target = kRotationL2Multiple * l2_bytes;
  const std::size_t copies = (target + set_bytes - 1) / set_bytes;
  if (copies < 1) return 1;
  return copies > static_cast<std::size_t>(kMaxRotationCopies) ? kMaxRotationCopies
                                                               : static_cast<int>(copies);
}

std::string check_fits(std::size_t bytes) {
  const std::size_t free_bytes = free_device_bytes();
  if (bytes + kMemoryMargin <= free_bytes) return "";
  char text[160];
  std::snprintf(text, sizeof text, "needs %.2f GB of device memory, %.2f GB free",
                static_cast<double>(bytes) / 1e9, static_cast<double>(free_bytes) / 1e9);
  return text;
}

Shape shape_for(std::int64_t elements) {
  if (elements % 12288 == 0) return Shape{elements / 12288, 12288};
  if (elements % 4096 == 0) return Shape{elements / 4096, 4096};
  return Shape{1, elements};
}

std::string shape_text(const Shape& shape) {
  return std::to_string(shape.batch) + "x" + std::to_string(shape.dim);
}

Row skipped_row(std::string section, std::string kernel, std::string label, std::int64_t elements,
                double bytes_per_element, std::string why) {
  Row row;
  row.section = std::move(section);
  row.kernel = std::move(kernel);
  row.label = std::move(label);
  row.elements = elements;
  row.bytes_per_element = bytes_per_element;
  row.skipped = std::move(why);
  return row;
}

double copy_reference(GpuContext& context, std::int64_t bytes_moved) {
  const auto found = context.copies.find(bytes_moved);
  if (found != context.copies.end()) return found->second.gigabytes_per_second;

  // Copy bytes_moved / 2: that many bytes read and as many written.
  const std::size_t floats = static_cast<std::size_t>(bytes_moved / 8);
  const std::size_t half = aligned_bytes(floats * sizeof(float));
  const std::size_t set_bytes = 2 * half;
  const int copies = rotation_copies(set_bytes, static_cast<std::size_t>(context.info.l2_bytes));
  Row row;
  row.section = "copy";
  row.kernel = "d2d_copy";
  row.label = "D2D copy (cudaMemcpyAsync)";
  row.elements = static_cast<std::int64_t>(floats);
  row.bytes_per_element = 8.0;  // one float read, one written
  row.note = "reference for rows moving " + std::to_string(bytes_moved) + " B";
  const std::string why = check_fits(set_bytes * static_cast<std::size_t>(copies));
  if (!why.empty()) {
    row.skipped = why;
    context.copies.emplace(bytes_moved, row);
    return 0.0;
  }
  DeviceBuffer pool(set_bytes * static_cast<std::size_t>(copies));
  fill_normal(pool.floats(), pool.bytes() / sizeof(float), 7, 0.0f, 1.0f, context.stream.get());
  auto* base = static_cast<char*>(pool.data());
  const auto seconds =
      time_calls(context.stream.get(), context.flusher, context.plan(copies), [&](int c) {
        char* set = base + static_cast<std::size_t>(c) * set_bytes;
        BENCH_CUDA_CHECK(cudaMemcpyAsync(set + half, set, floats * sizeof(float),
                                         cudaMemcpyDeviceToDevice, context.stream.get()));
      });
  row.seconds = summarize(seconds);
  row.derive_rates();
  context.copies.emplace(bytes_moved, row);
  return row.gigabytes_per_second;
}

std::vector<Row> copy_rows(const GpuContext& context) {
  std::vector<Row> rows;
  for (const auto& [bytes, row] : context.copies) rows.push_back(row);
  return rows;
}

std::vector<Row> run_gpu_rows(const GpuBenchOptions& options, const GpuInfo& info,
                              std::vector<std::string>& notes, std::ostream& progress) {
  if (!info.usable) return {};
  GpuContext context(options, info, notes, progress);

  progress << "checking the GPU paths against each other before timing...\n" << std::flush;
  check_gpu_paths(context);

  notes.push_back(
      "fused_step and the loop rows time whole Sampler::sample calls; with a capturable predictor "
      "the "
      "engine records the loop into a CUDA Graph on every call (updating the instantiated graph), "
      "so "
      "that host work is in their time, divided by the steps per call.");
  notes.push_back(
      "At small sizes every row is bound by the time per call (host API, launch), not by memory: "
      "their GB/s and x copy say how far from the bandwidth limit a small batch runs.");
  std::vector<Row> rows = run_ladder_rows(context);
  std::vector<Row> loops = run_loop_rows(context);
  rows.insert(rows.end(), loops.begin(), loops.end());

  // Every row is compared with a copy moving the same bytes.
  for (Row& row : rows) {
    if (!row.skipped.empty() || row.bytes() <= 0.0) continue;
    row.copy_gigabytes_per_second =
        copy_reference(context, static_cast<std::int64_t>(std::llround(row.bytes())));
  }
  std::vector<Row> copies = copy_rows(context);
  rows.insert(rows.end(), copies.begin(), copies.end());
  return rows;
}

}  // namespace ddpm::bench
