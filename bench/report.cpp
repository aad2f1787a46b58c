#include "report.h"

#include <cstdio>
#include <fstream>
#include <ostream>

#include "ddpm/error.h"
#include "format.h"
#include "mlp_rows.h"
#include "unet_rows.h"

namespace ddpm::bench {
namespace {

std::string version_text(int version) {
  if (version <= 0) return "none";
  return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10);
}


std::string time_cell(const Stats& s) {
  return format_seconds(s.median) + " [" + format_seconds(s.min) + " .. " + format_seconds(s.max) +
         "]";
}

void print_gpu_header(const Report& report, std::ostream& out) {
  const GpuInfo& gpu = report.gpu;
  out << "GPU:    ";
  if (gpu.usable) {
    out << gpu.name << " (sm_" << gpu.compute_major << gpu.compute_minor << ", "
        << gpu.multiprocessors << " SMs, " << format_bytes(static_cast<double>(gpu.memory_bytes))
        << ", L2 " << format_bytes(static_cast<double>(gpu.l2_bytes)) << ")\n";
  } else {
    out << "none usable\n";
  }
  out << "CUDA:   toolkit " << version_text(gpu.toolkit_version) << ", runtime "
      << version_text(gpu.runtime_version) << ", driver supports "
      << version_text(gpu.driver_cuda_version)
      << (report.run.nvidia_driver.empty() ? std::string() : ", driver " + report.run.nvidia_driver)
      << "\n";
}

// Rows of one section, grouped by kernel in order of first appearance.
std::vector<std::vector<const Row*>> by_kernel(const Report& report, const std::string& section) {
  std::vector<std::vector<const Row*>> groups;
  for (const Row& row : report.rows) {
    if (row.section != section) continue;
    bool placed = false;
    for (auto& group : groups) {
      if (group.front()->kernel == row.kernel) {
        group.push_back(&row);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({&row});
  }
  return groups;
}

void print_bandwidth_rows(const Report& report, const std::string& section, std::ostream& out) {
  out << "  " << pad("elements", 10) << pad("shape", 12)
      << pad("time per step: median [min .. max]", 40) << pad("elements/s", 13, true)
      << pad("bytes/step", 12, true) << pad("GB/s", 9, true) << pad("copy GB/s", 11, true)
      << pad("x copy", 8, true) << "  notes\n";
  for (const auto& group : by_kernel(report, section)) {
    const Row& first = *group.front();
    out << "  " << first.label << " [" << first.kernel << "], "
        << format_fixed(first.bytes_per_element, 0) << " B/element/step";
    if (!first.note.empty()) out << ": " << first.note;
    out << "\n";
    for (const Row* row : group) {
      out << "  " << pad(format_elements(row->elements), 10) << pad(row->shape, 12);
      if (!row->skipped.empty()) {
        out << "skipped: " << row->skipped << "\n";
        continue;
      }
      out << pad(time_cell(row->seconds), 40)
          << pad(format_count(row->elements_per_second), 13, true)
          << pad(format_bytes(row->bytes()), 12, true)
          << pad(format_fixed(row->gigabytes_per_second, 1), 9, true)
          << pad(row->copy_gigabytes_per_second > 0
                     ? format_fixed(row->copy_gigabytes_per_second, 1)
                     : "-",
                 11, true)
          << pad(row->copy_gigabytes_per_second > 0 ? format_fixed(row->copy_ratio(), 2) : "-", 8,
                 true)
          << (row->detail.empty() ? "" : "  " + row->detail) << "\n";
    }
  }
}

void print_copy_rows(const Report& report, std::ostream& out) {
  out << "  " << pad("bytes moved", 14, true) << "   " << pad("time: median [min .. max]", 40)
      << pad("GB/s", 9, true) << "\n";
  for (const Row& row : report.rows) {
    if (row.section != "copy") continue;
    out << "  " << pad(format_bytes(row.bytes()), 14, true) << "   ";
    if (!row.skipped.empty()) {
      out << "skipped: " << row.skipped << "\n";
      continue;
    }
    out << pad(time_cell(row.seconds), 40)
        << pad(format_fixed(row.gigabytes_per_second, 1), 9, true) << "\n";
  }
}

void print_cpu_rows(const Report& report, std::ostream& out) {
  out << "  " << pad("loop", 46) << pad("threads", 8, true) << "  " << pad("shape", 13)
      << pad("steps", 6, true) << "  " << pad("time per step: median [min .. max]", 40)
      << pad("element-steps/s", 16, true) << pad("GB/s", 8, true) << "\n";
  for (const Row& row : report.rows) {
    if (row.section != "cpu") continue;
    out << "  " << pad(row.label, 46) << pad(std::to_string(row.threads), 8, true) << "  "
        << pad(row.shape, 13) << pad(std::to_string(row.steps), 6, true) << "  "
        << pad(time_cell(row.seconds), 40) << pad(format_count(row.elements_per_second), 16, true)
        << pad(format_fixed(row.gigabytes_per_second, 2), 8, true) << "\n";
  }
}

bool has_section(const Report& report, const std::string& section) {
  for (const Row& row : report.rows) {
    if (row.section == section) return true;
  }
  return false;
}

}  // namespace

void print_table(const Report& report, std::ostream& out) {
  const RunInfo& run = report.run;
  out << "\nddpm-bench " << run.ddpm_version << ", commit " << run.commit << ", " << run.date
      << "\n";
  out << "host:   " << run.host_cpu << ", " << run.hardware_threads << " hardware threads\n";
  print_gpu_header(report, out);
  out << "Units are decimal (1 GB = 1e9 B). Bytes count each input read once and each output "
         "written once.\n";

  if (report.gpu_rows_requested && !report.gpu_skipped.empty()) {
    out << "\nGPU ROWS SKIPPED: " << report.gpu_skipped << "\n";
  }
  if (has_section(report, "gpu")) {
    out << "\nGPU kernels over the size ladder. Each repetition flushes L2, then runs the "
           "call(s) between two CUDA events;\nsmall sizes rotate through buffer sets so a "
           "repetition moves at least 2x L2. x copy = GB/s / copy GB/s,\nthe copy being a "
           "cudaMemcpyAsync D2D moving the same bytes in the same run.\n";
    print_bandwidth_rows(report, "gpu", out);
  }
  if (has_section(report, "gpu-loop")) {
    out << "\nGPU whole sampling loop through Sampler::sample (time per step = time per call / "
           "T):\n";
    print_bandwidth_rows(report, "gpu-loop", out);
  }
  if (has_section(report, "copy")) {
    out << "\nReference: cudaMemcpyAsync device-to-device (bytes moved = bytes read + bytes "
           "written):\n";
    print_copy_rows(report, out);
  }
  if (has_section(report, "cpu")) {
    out << "\nCPU backend: Sampler::sample, the whole loop (time per step = time per call / "
           "steps); GB/s counts x read and written once per step, and the model output too "
           "where it is not fused:\n";
    print_cpu_rows(report, out);
  }
  if (report.quality) print_quality(*report.quality, out);
  if (has_section(report, "mlp")) {
    out << "\nThe digits model (a trained MLP) through Sampler::sample, its card's loop from x_T "
           "to samples (bench/torch_baseline.py --mlp runs the same in PyTorch):\n";
    print_mlp_rows(report.rows, out);
  }
  if (has_section(report, "unet")) {
    out << "\ndiffusers UNet2DModel folders: one evaluation on the CPU, and a DDIM loop through "
           "Sampler::sample on the CPU and, as one graph, on the GPU (bench/torch_baseline.py --unet "
           "times PyTorch and ddpm alternately):\n";
    print_unet_rows(report.rows, out);
  }
  if (!report.notes.empty()) {
    out << "\nNotes:\n";
    for (const std::string& note : report.notes) out << "  - " << note << "\n";
  }
  out << std::flush;
}

nlohmann::json to_json(const Report& report) {
  using nlohmann::json;
  const RunInfo& run = report.run;
  const GpuInfo& gpu = report.gpu;
  json doc;
  doc["schema"] = "ddpm-bench/1";
  doc["ddpm_version"] = run.ddpm_version;
  doc["commit"] = run.commit;
  doc["date"] = run.date;
  doc["host"] = {{"cpu", run.host_cpu}, {"hardware_threads", run.hardware_threads}};
  doc["cuda"] = {
      {"compiled", gpu.compiled},
      {"available", gpu.usable},
      {"unavailable_reason", gpu.unavailable_reason},
      {"toolkit_version", version_text(gpu.toolkit_version)},
      {"runtime_version", version_text(gpu.runtime_version)},
      {"driver_cuda_version", version_text(gpu.driver_cuda_version)},
      {"driver_version", run.nvidia_driver.empty() ? json(nullptr) : json(run.nvidia_driver)},
  };
  if (gpu.usable) {
    doc["device"] = {
        {"name", gpu.name},
        {"compute_capability",
         std::to_string(gpu.compute_major) + "." + std::to_string(gpu.compute_minor)},
        {"multiprocessors", gpu.multiprocessors},
        {"memory_bytes", gpu.memory_bytes},
        {"l2_bytes", gpu.l2_bytes},
    };
  } else {
    doc["device"] = nullptr;
  }
  doc["gpu_rows"] =
      report.gpu_rows_requested
          ? (report.gpu_skipped.empty() ? json("ran") : json("skipped: " + report.gpu_skipped))
          : json("not requested");
  doc["settings"] = report.settings;
  json rows = json::array();
  for (const Row& row : report.rows) {
    json r = {
        {"section", row.section},
        {"kernel", row.kernel},
        {"label", row.label},
        {"elements", row.elements},
        {"shape", row.shape},
        {"steps_per_call", row.steps},
        {"bytes_per_element", row.bytes_per_element},
        {"bytes", row.bytes()},
        {"note", row.note},
        {"detail", row.detail},
    };
    if (!row.skipped.empty()) {
      r["skipped"] = row.skipped;
    } else {
      r["seconds"] = {{"median", row.seconds.median},
                      {"min", row.seconds.min},
                      {"max", row.seconds.max},
                      {"repetitions", row.seconds.count}};
      r["elements_per_second"] = row.elements_per_second;
      r["gigabytes_per_second"] = row.gigabytes_per_second;
      if (row.copy_gigabytes_per_second > 0) {
        r["copy_gigabytes_per_second"] = row.copy_gigabytes_per_second;
        r["copy_ratio"] = row.copy_ratio();
      }
    }
    if (row.section == "cpu" || row.section == "mlp" || row.section == "unet") r["threads"] = row.threads;
    if (row.samples_per_second > 0) r["samples_per_second"] = row.samples_per_second;
    rows.push_back(std::move(r));
  }
  doc["rows"] = std::move(rows);
  if (report.quality) doc["time_to_quality"] = to_json(*report.quality);
  doc["notes"] = report.notes;
  return doc;
}

void write_json(const Report& report, const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw Error("cannot open '" + path + "' for writing");
  out << to_json(report).dump(2) << "\n";
  out.close();
  if (!out) throw Error("failed writing '" + path + "'");
}

}  // namespace ddpm::bench
