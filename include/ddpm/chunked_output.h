#pragma once
// The output files of a job computed in chunks (and by several processes),
// owned by one run for its whole life: what the ddpm CLI's --chunk-rows,
// --resume and MPI ranks use, and what any other launcher can use.
//
// Each output OUT (a float32 .npy of `shape`, rows first) is written in place
// as OUT.partial; beside the first output, OUT.manifest lists every chunk
// done with an XXH3-64 checksum of its bytes in every partial, and OUT.lock
// is the run's advisory lock (flock), taken before anything is created, so
// that a second run on the same OUT is refused at once and touches nothing.
// A resumed run keeps only the chunks whose bytes still match their
// checksums (rejected() lists the others, which are computed again), and
// publish() checks every chunk once more before it renames the partials into
// place: a row is only ever published when it is proven computed. A run
// that ends before any row is done removes the files it created (compared
// by device and inode, never by name alone), and nothing else.
//
//   // one process; several: see join()
//   ddpm::ChunkedOutput out = ddpm::ChunkedOutput::create_or_resume(
//       {.outputs = {"out.npy"}, .shape = {n, dim}, .fingerprint = {"seed 1", "steps 1000"}},
//       /*resume=*/true);
//   for (const ddpm::RowRange& chunk : ddpm::chunk_rows(out.rows_to_do(), 1024, align)) {
//     std::vector<float> x(chunk.size() * dim);
//     sampler.sample({.x = x, .shape = {chunk.size(), dim},
//                     .noise = {.seed = 1, .first_sample = chunk.begin}}, predictor);
//     out.write_chunk(chunk, x);  // written, made durable, checksummed, recorded
//   }
//   out.publish();  // every row proven: out.npy.partial becomes out.npy
//
// Errors are ddpm::Error with one line naming the file.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ddpm/shard.h"

namespace ddpm {

struct ChunkedOutputSpec {
  // The final files (a symbolic link's target is written). The first names
  // OUT.manifest and OUT.lock. The manifest records each by its directory's
  // identity (links, "." and ".." resolved) and its name: out.npy,
  // ./out.npy and /data/out.npy are the same output.
  std::vector<std::string> outputs;
  std::vector<std::int64_t> shape;  // of every output, rows first
  // Lines that decide the output's bits (the options, the program's
  // version): a run resumes only a manifest with the same lines, shape and
  // outputs, and names the field that differs otherwise.
  std::vector<std::string> fingerprint;
};

class ChunkedOutput {
 public:
  // The owner (the only process, or rank 0): takes the lock, then starts
  // the job's files, or with `resume` goes on from its manifest when there is
  // one (verifying every chunk it lists). Without `resume`, leftovers of an
  // unfinished run are refused, never overwritten.
  static ChunkedOutput create_or_resume(const ChunkedOutputSpec& spec, bool resume);
  // Another process of the same job, after the owner has made the files:
  // opens the partial files to write its rows (write_rows), and nothing else.
  static ChunkedOutput join(const ChunkedOutputSpec& spec);
  // Refuses (ddpm::Error) to write `outputs` in one go where a chunked run
  // is running (it holds OUT.lock: refused at once, touching nothing) or
  // left its files (the leftovers would later be resumed over the new file).
  // Empty paths and streams are skipped.
  static void refuse_unfinished(const std::vector<std::string>& outputs);

  ChunkedOutput(ChunkedOutput&&) noexcept;
  ChunkedOutput& operator=(ChunkedOutput&&) noexcept;
  // Unpublished: keeps the rows done for a resumed run; with none done,
  // removes the files this run created. Lets go of the lock.
  ~ChunkedOutput();

  std::int64_t rows() const;
  std::int64_t row_size() const;  // floats per row
  // The owner's view: rows proven done (ordered, merged), and the rest.
  std::vector<RowRange> rows_done() const;
  std::vector<RowRange> rows_to_do() const;
  std::int64_t rows_resumed() const;  // proven done when the run began
  // Chunks a resumed manifest listed whose bytes did not match (computed again).
  const std::vector<RowRange>& rejected() const;

  // Any process: writes rows `chunk` of every output (arrays[k]: chunk.size()
  // rows of output k) and makes them durable.
  void write_rows(RowRange chunk, std::span<const std::span<const float>> arrays);
  // The owner: records chunks written (by any process) as done, with the
  // checksums of their bytes as the partial files hold them, durably.
  void record_done(std::span<const RowRange> chunks);
  // write_rows, then record_done: the one-process loop.
  void write_chunk(RowRange chunk, std::span<const std::span<const float>> arrays);
  void write_chunk(RowRange chunk, std::span<const float> rows);  // one output
  // Closes the partial files, reporting a failed close (every process, before
  // the owner publishes).
  void close();
  // The owner, when every row is done: verifies every chunk's checksum,
  // renames the partial files into place (all or nothing), removes the
  // manifest and the lock. A mismatch publishes nothing, drops the chunk
  // from the manifest and says to resume.
  void publish();

  const std::string& manifest_path() const;
  // "out.npy.partial and out.npy.manifest", for messages.
  std::string leftovers() const;

 private:
  struct State;
  explicit ChunkedOutput(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace ddpm
