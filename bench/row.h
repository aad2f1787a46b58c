#pragma once
// One line of the benchmark's output: what ran, on how many elements, how
// long one step of it took, and the bandwidth that implies.
#include <cstdint>
#include <string>

#include "stats.h"

namespace ddpm::bench {

struct Row {
  std::string section;        // "gpu" (kernel ladder), "gpu-loop" (T-step loops), "copy", "cpu"
  std::string kernel;         // stable id, e.g. "forward", "fused_step", "loop_fused_graph"
  std::string label;          // what a person reads in the table
  std::int64_t elements = 0;  // elements processed per step
  std::string shape;          // "batch x dim" as passed to the engine, if any
  int steps = 1;              // steps per timed call; times below are per step
  double bytes_per_element = 0.0;     // per step: each input read once, each output written once
  Stats seconds;                      // per step, over the repetitions
  double elements_per_second = 0.0;   // elements / median (element-steps/s for loops)
  double gigabytes_per_second = 0.0;  // bytes / median / 1e9
  double copy_gigabytes_per_second = 0.0;  // D2D copy moving the same bytes; 0: none
  int threads = 0;                         // CPU rows: worker threads used
  double samples_per_second = 0.0;         // whole-loop rows of a model: samples / time per call
  std::string note;                        // what the kernel's figures include (same at every size)
  std::string detail;                      // about this row alone (rotation, L2)
  std::string skipped;                     // non-empty: not run, and why

  double bytes() const { return bytes_per_element * static_cast<double>(elements); }
  double copy_ratio() const {
    return copy_gigabytes_per_second > 0.0 ? gigabytes_per_second / copy_gigabytes_per_second : 0.0;
  }
  // Fills elements_per_second and gigabytes_per_second from `seconds`.
  void derive_rates() {
    if (seconds.median > 0.0) {
      elements_per_second = static_cast<double>(elements) / seconds.median;
      gigabytes_per_second = bytes() / seconds.median / 1e9;
    }
  }
};

}  // namespace ddpm::bench
