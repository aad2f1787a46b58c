#pragma once
// The two outputs of a run: a plain table for people and JSON for machines.
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gpu_bench.h"
#include "quality_rows.h"
#include "row.h"
#include "system_info.h"

namespace ddpm::bench {

struct Report {
  RunInfo run;
  GpuInfo gpu;
  bool gpu_rows_requested = true;
  bool cpu_rows_requested = true;
  std::string gpu_skipped;  // why the GPU rows did not run; empty when they did
  nlohmann::json settings;  // the options the rows ran with
  std::vector<Row> rows;
  std::optional<QualityReport> quality;  // time to quality, when run
  std::vector<std::string> notes;
};

void print_table(const Report& report, std::ostream& out);
nlohmann::json to_json(const Report& report);
// Throws ddpm::Error when the file cannot be written.
void write_json(const Report& report, const std::string& path);

}  // namespace ddpm::bench
