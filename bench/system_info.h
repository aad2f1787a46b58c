#pragma once
// Where and when a benchmark ran: date, commit, host processor, NVIDIA driver.
#include <string>

namespace ddpm::bench {

struct RunInfo {
  std::string date;          // UTC, ISO 8601
  std::string commit;        // git commit of the build, or "unknown"
  std::string ddpm_version;  // project version
  std::string host_cpu;      // /proc/cpuinfo "model name", or "unknown"
  unsigned hardware_threads = 0;
  std::string nvidia_driver;  // kernel module version, or "" when none is loaded
};

// `commit_override`, when non-empty, replaces the commit recorded at configure time.
RunInfo collect_run_info(const std::string& commit_override);

}  // namespace ddpm::bench
