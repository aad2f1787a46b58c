#include "system_info.h"

#include <ctime>
#include <fstream>
#include <regex>
#include <thread>

#ifndef DDPM_BENCH_GIT_COMMIT
#define DDPM_BENCH_GIT_COMMIT "unknown"
#endif
#ifndef DDPM_BENCH_VERSION
#define DDPM_BENCH_VERSION "unknown"
#endif

namespace ddpm::bench {
namespace {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  ..." -> "580.159.04".
std::string nvidia_driver_version() {
  std::ifstream in("/proc/driver/nvidia/version");
  std::string line;
  if (!std::getline(in, line)) return "";
  std::smatch match;
  if (std::regex_search(line, match, std::regex(R"((\d+\.\d+(\.\d+)?))"))) return match[1];
  return line;
}

}  // namespace

RunInfo collect_run_info(const std::string& commit_override) {
  RunInfo info;
  info.date = utc_now();
  info.commit = commit_override.empty() ? std::string(DDPM_BENCH_GIT_COMMIT) : commit_override;
  if (info.commit.empty()) info.commit = "unknown";
  info.ddpm_version = DDPM_BENCH_VERSION;
  info.host_cpu = cpu_model_name();
  info.hardware_threads = std::thread::hardware_concurrency();
  info.nvidia_driver = nvidia_driver_version();
  return info;
}

}  // namespace ddpm::bench
