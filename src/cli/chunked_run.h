#pragma once
// Chunked and distributed runs of `ddpm sample` and `ddpm forward` (README,
// "Scale-out"). Under an MPI launcher (mpirun -np R) every rank takes a
// contiguous share of the rows, and every process, one or many, computes its
// share in chunks of --chunk-rows rows into the job's ddpm::ChunkedOutput
// (include/ddpm/chunked_output.h), which owns the files: rank 0 takes the
// output (its lock, OUT.partial, OUT.manifest), records the chunks every
// rank made durable with their checksums, and publishes OUT when every row
// is proven; --resume computes only the rows the manifest proves undone. The
// result is bit for bit that of one process, for any number of ranks, chunk
// size or resumption: a row's noise depends on its global index only.
//
// Every rank goes through the same sequence of agreements (an all-gather of
// a small report); a rank that fails reports it at the next one, and then
// every rank stops with the first failing rank's one-line message.
//
// The commands use it in three places: ChunkedRunOptions::add_to() adds the
// flags, run_on_every_rank() wraps the command's work, and run_chunked()
// replaces the one-batch path when ChunkedRunOptions::active().
#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backend_options.h"
#include "ddpm/shard.h"
#include "ddpm/types.h"

namespace ddpm::cli {

struct ChunkedRunOptions {
  std::string chunk_rows_text = "auto";  // --chunk-rows: rows, or "auto" (from free memory)
  bool resume = false;
  double progress_interval = 10.0;  // seconds between rank 0's progress lines

  // --chunk-rows, --resume, --progress-interval; remembers the command, whose
  // options make the run's fingerprint.
  void add_to(CLI::App& command);
  // Whether the command runs chunked: as one of several MPI ranks, or with
  // --chunk-rows or --resume.
  bool active() const;
  // When active(): every output (flag, path) must be a file, since the rows
  // are written in place; a stream ("-", /dev/fd/N, a FIFO, a device) is a
  // usage error, reported before the outputs are opened. Otherwise (one
  // batch): an output that an unfinished chunked run left files for is
  // refused, since resuming that run later would replace it.
  void require_files(const std::vector<std::pair<std::string, std::string>>& outputs) const;

  const CLI::App* command = nullptr;
  const CLI::Option* chunk_flag = nullptr;
};

// Runs a command's work as one rank of the job: starts MPI where an MPI
// launcher started several processes, gives each rank its share of this
// machine's CPU threads (when --threads is 0) and its own GPU (device
// local rank % devices), and turns a failure before run_chunked() (bad input
// on one rank) into every rank's failure: each rank prints the first
// failing rank's message and exits with its status. Ends MPI on the way out.
void run_on_every_rank(const ChunkedRunOptions& chunking, BackendOptions& backend,
                       const std::function<void()>& work);

// What a command computes, rows at a time.
struct ChunkedJob {
  std::string label;                // "sampling", "noising": progress lines
  std::vector<std::int64_t> shape;  // of every output, first axis the rows
  // (flag, path) of each output; the first's file names OUT.partial and
  // OUT.manifest, the others get PATH.partial.
  std::vector<std::pair<std::string, std::string>> outputs;
  Backend backend = Backend::cpu;  // the backend in use (part of the fingerprint)
  // Float arrays of a row's size held at once besides the outputs (inputs,
  // the engine's work buffers): sizes the automatic chunk.
  int extra_row_buffers = 2;
  // Chunks and ranks' shares begin at multiples of this many rows (the
  // predictor's split_alignment()), so that they give one process's bits.
  std::int64_t row_alignment = 1;
  std::int64_t first_sample = 0;  // global sample of row 0 (--first-sample), where multiples count from
  // Computes rows `chunk` into out[k] (chunk.size() rows of each output),
  // calling progress(fraction of the chunk done) when it can.
  std::function<void(RowRange chunk, std::span<const std::span<float>> out,
                     const std::function<void(double)>& progress)>
      compute;
};

struct ChunkedRunResult {
  int ranks = 1;
  std::int64_t chunk_rows = 0;    // this rank's chunk size
  std::int64_t rows_resumed = 0;  // rows the manifest had done before this run
  bool reports = false;           // this rank prints the summary (rank 0)
};

// Runs the job chunked (and distributed, under an MPI launcher). Throws, on
// every rank alike, the first failure of any rank.
ChunkedRunResult run_chunked(const ChunkedJob& job, const ChunkedRunOptions& options);

// ", 3 ranks, chunks of 512 rows" (", 1000 rows resumed"), for summary lines.
std::string describe_chunked_run(const ChunkedRunResult& result);

}  // namespace ddpm::cli
