#include "chunked_run.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <sstream>
#include <thread>

#include "command_line.h"
#include "ddpm/backend.h"
#include "ddpm/chunked_output.h"
#include "ddpm/error.h"
#include "ddpm/files.h"
#include "mpi_world.h"
#include "output_files.h"
#include "progress_bar.h"
#include "text_parsing.h"

#ifndef DDPM_VERSION
#error "DDPM_VERSION must be the project version (set by src/cli/CMakeLists.txt)"
#endif

namespace ddpm::cli {
namespace {

using Clock = std::chrono::steady_clock;

// A chunk's arrays are capped at this many bytes each: enough rows to keep a
// GPU or every CPU core busy, few enough that memory stays flat as N grows
// and a resumed run loses little.
constexpr std::uint64_t kMaxChunkBytes = std::uint64_t{128} << 20;

// ---------------------------------------------------------------------------
// Agreement: every rank, at the same points, shares a small report; a rank
// that failed says so in its report, and then every rank stops with the
// message of the first rank that failed.

enum Status : std::int64_t { kOk = 0, kFailed = 1, kUsage = 2 };

struct Failure {
  std::int64_t status = kOk;
  std::string message;
  std::exception_ptr original;
  explicit operator bool() const { return status != kOk; }
};

Failure failure_from(std::exception_ptr error) {
  Failure failure{kFailed, {}, error};
  try {
    std::rethrow_exception(error);
  } catch (const UsageError& e) {
    failure.status = kUsage;
    failure.message = e.what();
  } catch (const std::bad_alloc&) {
    failure.message = "out of memory: the chunk does not fit; use a smaller --chunk-rows";
  } catch (const std::exception& e) {
    failure.message = e.what();
  } catch (...) {
    failure.message = "unknown error";
  }
  return failure;
}

// Runs `step`, keeping its failure (if any) for the next agreement. A rank
// that has failed skips the steps until then.
template <class Step>
void attempt(Failure& failure, Step&& step) {
  if (failure) return;
  try {
    step();
  } catch (...) {
    failure = failure_from(std::current_exception());
  }
}

[[noreturn]] void throw_as(std::int64_t status, const std::string& message) {
  if (status == kUsage) throw UsageError(message);
  throw Error(message);
}

struct ProtocolState {
  bool failure_agreed = false;  // every rank knows of a failure: nothing more to agree on
  bool running = false;         // inside run_chunked()
};

ProtocolState& protocol() {
  static ProtocolState state;
  return state;
}

constexpr std::size_t kReportValues = 3;
using Report = std::array<std::int64_t, 1 + kReportValues>;  // status, then the values

// Every rank's report (a rank that failed reports its status; then the
// values do not count).
std::vector<Report> gather(const Failure& mine, std::array<std::int64_t, kReportValues> values) {
  Report word{mine.status};
  std::copy(values.begin(), values.end(), word.begin() + 1);
  const std::vector<std::int64_t> all = World::get().all_gather(word);
  std::vector<Report> reports(all.size() / word.size());
  for (std::size_t r = 0; r < reports.size(); ++r) {
    std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(r * word.size()), word.size(),
                reports[r].begin());
  }
  return reports;
}

// Throws, on every rank alike, the failure of the first rank that reported one.
void stop_on_failure(const std::vector<Report>& reports, const Failure& mine) {
  const World& world = World::get();
  for (int r = 0; r < world.size(); ++r) {
    const std::int64_t status = reports[static_cast<std::size_t>(r)][0];
    if (status == kOk) continue;
    protocol().failure_agreed = true;
    if (!world.distributed()) std::rethrow_exception(mine.original);
    const std::string message = world.broadcast(mine.message, r);
    throw_as(status,
             "rank " + std::to_string(r) + " of " + std::to_string(world.size()) + ": " + message);
  }
}

// One agreement: every rank's report, or (on every rank) the first failure.
std::vector<Report> agree(const Failure& mine,
                          std::array<std::int64_t, kReportValues> values = {}) {
  std::vector<Report> reports = gather(mine, values);
  stop_on_failure(reports, mine);
  return reports;
}

// ---------------------------------------------------------------------------
// The fingerprint: what decides the output's bits, as lines. Flags that only
// decide how the work is done (chunks, threads, progress) are left out; the
// backend is the one in use, since CPU and GPU (and the CPU's portable and
// AVX2 kernels) agree to about 1e-6, not bit for bit.

const char* const kNotInFingerprint[] = {"--chunk-rows", "--resume",  "--progress-interval",
                                         "--threads",    "--backend", "--help"};

std::vector<std::string> fingerprint(const ChunkedJob& job, const ChunkedRunOptions& options) {
  std::vector<std::string> flags;
  for (const CLI::Option* option : options.command->get_options()) {
    if (option->count() == 0) continue;
    const std::string name = option->get_name();
    if (std::find(std::begin(kNotInFingerprint), std::end(kNotInFingerprint), name) !=
        std::end(kNotInFingerprint)) {
      continue;
    }
    std::string line = name;
    // An output's path is compared by the file it names (the manifest's
    // outputs): ./big.npy and big.npy are one job.
    const bool output = std::any_of(job.outputs.begin(), job.outputs.end(),
                                    [&](const auto& o) { return option->check_name(o.first); });
    if (!output) {
      for (const std::string& value : option->results()) line += " " + value;
    }
    flags.push_back(line);
  }
  std::sort(flags.begin(), flags.end());
  std::vector<std::string> lines{"ddpm " DDPM_VERSION " " + options.command->get_name()};
  lines.insert(lines.end(), flags.begin(), flags.end());
  std::string backend = "backend " + to_string(job.backend);
  if (job.backend == Backend::cpu)
    backend += std::string(" (") + cpu_kernels_name() + " kernels)";
  lines.push_back(backend);
  lines.push_back("shape " + format_shape(job.shape));
  return lines;
}

std::string join(const std::vector<std::string>& lines, const char* separator) {
  std::string text;
  for (const std::string& line : lines) text += (text.empty() ? "" : separator) + line;
  return text;
}

std::int64_t hash_of(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ull;  // FNV-1a, 64 bits
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return static_cast<std::int64_t>(hash);
}

// "(A: x, y; B: z)": the lines only one side has.
std::string difference(const std::vector<std::string>& a, const std::string& a_name,
                       const std::vector<std::string>& b, const std::string& b_name) {
  auto only = [](const std::vector<std::string>& from, const std::vector<std::string>& other) {
    std::vector<std::string> lines;
    for (const std::string& line : from) {
      if (std::find(other.begin(), other.end(), line) == other.end()) lines.push_back(line);
    }
    return lines.empty() ? std::string("nothing else") : join(lines, ", ");
  };
  return "(" + a_name + ": " + only(a, b) + "; " + b_name + ": " + only(b, a) + ")";
}

// ---------------------------------------------------------------------------
// Sizes.

std::int64_t row_size_of(const std::vector<std::int64_t>& shape) {
  std::int64_t size = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) size *= shape[i];
  return size;
}

// Rows per chunk from the memory free now, shared by this machine's ranks.
std::int64_t automatic_chunk_rows(const ChunkedJob& job, std::int64_t row_size) {
  const World& world = World::get();
  const double arrays = static_cast<double>(job.outputs.size()) + job.extra_row_buffers;
  const double row_bytes = static_cast<double>(std::max<std::int64_t>(row_size, 1)) * sizeof(float);
  double budget = static_cast<double>(available_memory_bytes()) / 4.0 / world.local_size();
  if (job.backend == Backend::cuda) {
    if (const std::uint64_t device = cuda_free_memory_bytes(); device > 0) {
      budget = std::min(budget, static_cast<double>(device) / 2.0);
    }
  }
  const double rows = std::min(budget / (row_bytes * arrays), kMaxChunkBytes / row_bytes);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(rows));
}

// ---------------------------------------------------------------------------
// Progress: rank 0 shows rows done across all ranks, as a bar on a terminal
// and as a line every progress_interval seconds otherwise (a log, mpirun).

class RowProgress {
 public:
  RowProgress(const std::string& label, std::int64_t total, std::int64_t already_done,
              double interval, bool shown)
      : label_(label),
        total_(total),
        already_done_(already_done),
        interval_(interval),
        lines_(shown && ::isatty(STDERR_FILENO) != 1),
        bar_(shown ? label : std::string()),
        shown_(shown),
        start_(Clock::now()),
        last_line_(start_) {}

  // `done` rows done (an estimate within a round); `round_end`: exact.
  void update(double done, bool round_end) {
    if (!shown_) return;
    bar_.update(static_cast<std::int64_t>(done), total_);
    const Clock::time_point now = Clock::now();
    const double since_line = std::chrono::duration<double>(now - last_line_).count();
    if (!lines_ || since_line < interval_ || (interval_ <= 0 && !round_end)) return;
    last_line_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? (done - static_cast<double>(already_done_)) / elapsed : 0;
    const double left = rate > 0 ? (static_cast<double>(total_) - done) / rate : 0;
    std::fprintf(stderr, "ddpm: %s: %lld of %lld rows (%.0f%%), %.0f rows/s, %.0f s left\n",
                 label_.c_str(), static_cast<long long>(done), static_cast<long long>(total_),
                 100.0 * done / static_cast<double>(std::max<std::int64_t>(total_, 1)), rate, left);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::int64_t total_;
  std::int64_t already_done_;
  double interval_;
  bool lines_;
  ProgressBar bar_;
  bool shown_;
  Clock::time_point start_;
  Clock::time_point last_line_;
};

// What rank 0 says when a signal ends the run part-way: "stopped after 3 of
// 8 chunks (24 of 64 rows done); rerun the same command with --resume to
// continue". The counts change under hold_off_signals() together with the
// manifest, so the line says what the manifest the signal leaves says; once
// the outputs are published (the partial file renamed), it says nothing.
class StopReport {
 public:
  StopReport(const ChunkedOutput& output, std::int64_t rows_done, std::int64_t chunks)
      : partial_(output.manifest_path().substr(0, output.manifest_path().size() - 9) + ".partial"),
        rows_(output.rows()),
        rows_done_(rows_done),
        chunks_(chunks) {
    set_signal_message([this] { return line(); });
  }
  ~StopReport() { set_signal_message({}); }
  StopReport(const StopReport&) = delete;
  StopReport& operator=(const StopReport&) = delete;

  // Chunks the manifest has just recorded as done (under hold_off_signals()).
  void recorded(const std::vector<RowRange>& chunks) {
    chunks_done_ += static_cast<std::int64_t>(chunks.size());
    for (const RowRange& chunk : chunks) rows_done_ += chunk.size();
  }

 private:
  std::string line() const {
    struct stat st {};
    if (::lstat(partial_.c_str(), &st) != 0) return "";
    return "ddpm: stopped after " + std::to_string(chunks_done_) + " of " +
           std::to_string(chunks_) + " chunks (" + std::to_string(rows_done_) + " of " +
           std::to_string(rows_) +
           " rows done); rerun the same command with --resume to continue";
  }

  std::string partial_;
  std::int64_t rows_;
  std::int64_t rows_done_;
  std::int64_t chunks_;
  std::int64_t chunks_done_ = 0;
};

// Rows as text ("b e b e ..."), for sending between ranks.
std::string encode_rows(const std::vector<RowRange>& rows) {
  std::ostringstream text;
  for (const RowRange& range : rows) text << range.begin << ' ' << range.end << ' ';
  return text.str();
}

std::vector<RowRange> decode_rows(const std::string& text) {
  std::istringstream in(text);
  std::vector<RowRange> rows;
  RowRange range;
  while (in >> range.begin >> range.end) rows.push_back(range);
  return rows;
}

// This rank's chunks of the rows still to do, cut at multiples of the job's
// row alignment in global samples.
std::vector<RowRange> chunks_of_rank(const std::vector<RowRange>& remaining, int rank,
                                     std::int64_t rows_per_chunk, const ChunkedJob& job) {
  std::vector<RowRange> global = remaining;
  for (RowRange& range : global) range = {range.begin + job.first_sample, range.end + job.first_sample};
  const std::vector<RowRange> share =
      split_rows(global, World::get().size(), rank, job.row_alignment);
  std::vector<RowRange> chunks = chunk_rows(share, rows_per_chunk, job.row_alignment);
  for (RowRange& chunk : chunks) chunk = {chunk.begin - job.first_sample, chunk.end - job.first_sample};
  return chunks;
}

}  // namespace

// ---------------------------------------------------------------------------

namespace {

// --chunk-rows: a whole number of rows >= 1, or "auto" (0).
std::int64_t parse_chunk_rows(const std::string& text) {
  if (text == "auto") return 0;
  std::int64_t rows = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, rows);
  if (error != std::errc() || stop != end || rows < 1) {
    throw Error("the chunk size must be a whole number of rows >= 1 or 'auto', got '" + text + "'");
  }
  return rows;
}

}  // namespace

void ChunkedRunOptions::add_to(CLI::App& app) {
  command = &app;
  chunk_flag =
      app.add_option("--chunk-rows", chunk_rows_text,
                     "compute and write the rows in chunks of this many (each process), so\n"
                     "memory stays flat whatever the batch, or 'auto' (from free memory, the\n"
                     "default under mpirun); the output is written in place as OUT.partial\n"
                     "with OUT.manifest listing the rows done, and renamed to OUT at the end;\n"
                     "with --model, rounded up to whole blocks of 64 rows (the network's, so\n"
                     "that chunks and ranks give one process's bits)")
          ->check(parsed_by([](const std::string& text) { parse_chunk_rows(text); }));
  app.add_flag("--resume", resume,
               "finish an interrupted chunked or distributed run: compute only the rows\n"
               "OUT.manifest does not list as done (the same command otherwise; starts\n"
               "afresh when there is nothing to resume)");
  app.add_option("--progress-interval", progress_interval,
                 "seconds between progress lines (rows done on every rank) that rank 0 of a\n"
                 "chunked run prints when stderr is not a terminal; 0: after every chunk")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
}

void ChunkedRunOptions::require_files(
    const std::vector<std::pair<std::string, std::string>>& outputs) const {
  if (!active()) {
    std::vector<std::string> paths;
    for (const auto& output : outputs) paths.push_back(output.second);
    ChunkedOutput::refuse_unfinished(paths);
    return;
  }
  for (const auto& [flag, path] : outputs) {
    if (path.empty()) continue;
    // What resolve_output() would write through as a stream, without its
    // other checks (a terminal), which would hide this message.
    struct stat st {};
    const bool device = ::stat(path.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode));
    if (inherited_descriptor(path) >= 0 || device) {
      throw UsageError(flag + " " + path +
                       ": a chunked or distributed run writes its rows in place into a file, "
                       "not a stream; name a file");
    }
  }
}

bool ChunkedRunOptions::active() const {
  return World::get().distributed() || (chunk_flag != nullptr && chunk_flag->count() > 0) || resume;
}

void run_on_every_rank(const ChunkedRunOptions& chunking, BackendOptions& backend,
                       const std::function<void()>& work) {
  World& world = World::get();
  struct Finish {
    ~Finish() { World::get().finish(); }  // also on the way out of a failure
  } finish;
  world.start();
  if (!world.distributed()) {
    work();  // failures reach main() as they always have
    return;
  }
  if (world.local_size() > 1) {
    if (backend.threads == 0) {
      // This machine's cores shared among its ranks (mpirun may have bound
      // each rank to fewer: then those).
      cpu_set_t allowed;
      CPU_ZERO(&allowed);
      const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
      const int bound =
          ::sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? CPU_COUNT(&allowed) : hardware;
      backend.threads = bound < hardware ? bound : std::max(1, hardware / world.local_size());
    }
    if (backend.backend != "cpu") select_cuda_device(world.local_rank());
  }
  Failure failure;
  try {
    work();
  } catch (...) {
    failure = failure_from(std::current_exception());
    // A failure the other ranks have not heard of (bad input found before
    // run_chunked, on this rank only): they are waiting at the first
    // agreement of run_chunked; meet them there.
    if (!protocol().failure_agreed && !protocol().running) {
      try {
        agree(failure);
      } catch (...) {
        failure = failure_from(std::current_exception());
      }
    }
  }
  if (failure) {
    // Every rank says why, then waits for the others in MPI_Finalize before
    // it exits: mpirun ends the whole job when the first rank exits with an
    // error, which must not cut another rank's message or clean-up short.
    report_error(failure.message);
    if (failure.status == kUsage) {
      std::fprintf(stderr, "Run 'ddpm %s --help' for more information.\n",
                   chunking.command->get_name().c_str());
    }
    world.finish();
    std::exit(static_cast<int>(failure.status));
  }
}

ChunkedRunResult run_chunked(const ChunkedJob& job, const ChunkedRunOptions& options) {
  World& world = World::get();
  protocol().running = true;
  struct NotRunning {
    ~NotRunning() { protocol().running = false; }
  } not_running;
  ChunkedRunResult result;
  result.ranks = world.size();
  result.reports = world.rank() == 0;

  // 1. Every rank: the chunk size and the fingerprint.
  Failure failure;
  const std::int64_t rows = job.shape.front();
  const std::int64_t row_size = row_size_of(job.shape);
  ChunkedOutputSpec spec;
  spec.shape = job.shape;
  for (const auto& output : job.outputs) spec.outputs.push_back(output.second);
  attempt(failure, [&] {
    // Every row's global sample index must fit, checked before any file is
    // made (as one batch's run checks it before it starts).
    if (job.first_sample > std::numeric_limits<std::int64_t>::max() - rows) {
      throw Error("first sample " + std::to_string(job.first_sample) + " + batch " +
                  std::to_string(rows) + " overflows the 64-bit sample index (at most " +
                  std::to_string(std::numeric_limits<std::int64_t>::max()) + ")");
    }
    const std::int64_t requested = parse_chunk_rows(options.chunk_rows_text);
    // No larger than the rows (the summary says what a chunk really holds).
    const std::int64_t wanted = requested > 0 ? requested : automatic_chunk_rows(job, row_size);
    result.chunk_rows = aligned_chunk_rows(std::min(wanted, std::max<std::int64_t>(rows, 1)),
                                           job.row_alignment);
    spec.fingerprint = fingerprint(job, options);
  });
  // The ranks must run the same command, outputs named alike included.
  std::vector<std::string> command_lines = spec.fingerprint;
  for (const auto& [flag, path] : job.outputs) command_lines.push_back(flag + " " + path);
  const std::string fingerprint_text = join(command_lines, "\n");
  const std::vector<Report> setup =
      agree(failure, {hash_of(fingerprint_text), result.chunk_rows, 0});

  // 2. The same options on every rank, or every rank stops.
  const bool same = std::all_of(setup.begin(), setup.end(),
                                [&](const Report& r) { return r[1] == setup.front()[1]; });
  if (!same) {
    const std::string first = world.broadcast(fingerprint_text, 0);
    if (setup[static_cast<std::size_t>(world.rank())][1] != setup.front()[1]) {
      std::vector<std::string> theirs;
      std::string line;
      for (const char c : first + "\n") {
        if (c != '\n') {
          line += c;
        } else {
          theirs.push_back(line);
          line.clear();
        }
      }
      failure = {kUsage,
                 "started with other options than rank 0 " +
                     difference(command_lines, "here", theirs, "rank 0") +
                     ": every rank must run the same command",
                 nullptr};
    }
    agree(failure);
  }

  // 3. Rank 0 takes the output (its lock, then new files or, resuming, the
  // chunks it can prove done); then every other rank opens the files.
  std::int64_t rows_done = 0;
  std::string leftovers;
  try {
    std::optional<ChunkedOutput> output;
    std::string done_text;
    if (world.rank() == 0) {
      attempt(failure, [&] {
        output = ChunkedOutput::create_or_resume(spec, options.resume);
        leftovers = output->leftovers();
        for (const RowRange& rejected : output->rejected()) {
          warn(output->manifest_path() + " lists rows " + std::to_string(rejected.begin) + " to " +
               std::to_string(rejected.end - 1) +
               " as done, but their bytes do not match its checksum: computing them again");
        }
        done_text = encode_rows(output->rows_done());
      });
    }
    agree(failure);
    leftovers = world.broadcast(leftovers, 0);
    const std::vector<RowRange> done = decode_rows(world.broadcast(done_text, 0));
    for (const RowRange& range : done) result.rows_resumed += range.size();
    rows_done = result.rows_resumed;

    std::vector<RowRange> chunks;
    std::size_t rounds = 0;
    std::optional<StopReport> stop_report;
    attempt(failure, [&] {
      if (world.rank() != 0) output = ChunkedOutput::join(spec);
      const std::vector<RowRange> remaining = rows_not_in(rows, done);
      chunks = chunks_of_rank(remaining, world.rank(), result.chunk_rows, job);
      std::int64_t every_chunk = 0;
      for (int r = 0; r < world.size(); ++r) {
        const std::size_t of_rank =
            chunks_of_rank(remaining, r, setup[static_cast<std::size_t>(r)][2], job).size();
        rounds = std::max(rounds, of_rank);
        every_chunk += static_cast<std::int64_t>(of_rank);
      }
      if (world.rank() == 0) stop_report.emplace(*output, rows_done, every_chunk);
    });
    agree(failure);

    // 4. Rounds: each rank computes, writes and syncs one chunk, then all
    // report what they finished, and rank 0 records it in the manifest.
    RowProgress progress(job.label, rows, rows_done, options.progress_interval, world.rank() == 0);
    std::int64_t largest = 0;
    for (const RowRange& chunk : chunks) largest = std::max(largest, chunk.size());
    std::vector<std::vector<float>> buffers(job.outputs.size());
    std::int64_t round_rows = 0;  // rows of the current round, all ranks (rank 0's estimate)
    for (std::size_t round = 0; round < rounds; ++round) {
      RowRange chunk;
      attempt(failure, [&] {
        if (round >= chunks.size()) return;
        chunk = chunks[round];
        std::vector<std::span<float>> out;
        for (std::vector<float>& buffer : buffers) {
          buffer.resize(static_cast<std::size_t>(largest * row_size));
          out.emplace_back(buffer.data(), static_cast<std::size_t>(chunk.size() * row_size));
        }
        try {
          job.compute(chunk, out, [&](double fraction) {
            progress.update(static_cast<double>(rows_done) +
                                fraction * static_cast<double>(std::max(round_rows, chunk.size())),
                            false);
          });
        } catch (const Error& e) {
          // Errors name elements within the chunk: say which rows it holds.
          throw_as(dynamic_cast<const UsageError*>(&e) ? kUsage : kFailed,
                   "rows " + std::to_string(chunk.begin) + " to " + std::to_string(chunk.end - 1) +
                       ": " + e.what());
        }
        std::vector<std::span<const float>> arrays;
        for (std::size_t k = 0; k < out.size(); ++k) {
          require_finite(job.outputs[k].second, out[k].data(), chunk.size() * row_size, row_size,
                         chunk.begin);
          arrays.emplace_back(out[k]);
        }
        output->write_rows(chunk, arrays);
      });
      // The chunks finished are recorded even when a rank failed this round.
      const std::vector<Report> finished = gather(failure, {chunk.begin, chunk.end, 0});
      round_rows = 0;
      std::vector<RowRange> recorded;
      for (const Report& report : finished) {
        if (report[0] != kOk) continue;
        const RowRange rows_finished{report[1], report[2]};
        rows_done += rows_finished.size();
        round_rows += rows_finished.size();
        recorded.push_back(rows_finished);
      }
      if (world.rank() == 0 && output && round_rows > 0) {
        try {
          const auto held = hold_off_signals();
          output->record_done(recorded);
          stop_report->recorded(recorded);
        } catch (...) {
          if (!failure) failure = failure_from(std::current_exception());  // told next round
        }
      }
      stop_on_failure(finished, failure);
      progress.update(static_cast<double>(rows_done), true);
    }
    attempt(failure, [&] { output->close(); });
    agree(failure);

    // 5. Every row is done: rank 0 checks every chunk once more and puts the
    // outputs in place, all or nothing.
    if (world.rank() == 0) {
      attempt(failure, [&] {
        output->publish();
        if (::access(output->manifest_path().c_str(), F_OK) == 0) {
          warn("cannot remove " + output->manifest_path() +
               " (the outputs are in place: delete it by hand)");
        }
      });
    }
    agree(failure);
  } catch (...) {
    // The rows done stay for --resume (ChunkedOutput keeps them; a run
    // that did nothing has removed what it made).
    if (rows_done > 0) {
      const Failure f = failure_from(std::current_exception());
      throw_as(f.status, f.message + " (" + std::to_string(rows_done) + " of " +
                             std::to_string(rows) + " rows are done in " + leftovers +
                             ": run the same command with --resume to finish)");
    }
    throw;
  }
  return result;
}

std::string describe_chunked_run(const ChunkedRunResult& result) {
  std::string text;
  if (result.ranks > 1) text += ", " + std::to_string(result.ranks) + " ranks";
  text += ", chunks of " + std::to_string(result.chunk_rows) + " rows";
  if (result.rows_resumed > 0) text += ", " + std::to_string(result.rows_resumed) + " rows resumed";
  return text;
}

}  // namespace ddpm::cli
