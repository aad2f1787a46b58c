#pragma once
// Splitting one job into parts by rows, for any launcher (MPI, Slurm arrays,
// Kubernetes jobs, Ray, a shell loop). Every Gaussian draw is keyed by
// (seed, global sample, element, step), so rows [b, e) computed anywhere with
// NoiseKey::first_sample = first + b are bit for bit the rows b..e-1 of one
// process's run over all rows, for every step rule and predictor, when the
// parts begin at multiples of the predictor's split_alignment() (1 for the
// built-in gaussian and gmm predictors: any split; 64 for the MLP predictor
// on the CPU, whose matrix products take 64-sample blocks together, since a
// BLAS rounds a row differently in products of different sizes). The `align`
// arguments below keep every split on such multiples. The parts write their
// rows into one float32 .npy at their byte offsets (NpyRowWriter) and read
// inputs the same way
// (NpyRowReader), so no process ever holds more than the rows it is working on.
//
//   // part p of P, in chunks of at most 1024 rows:
//   const std::int64_t align = predictor.split_alignment();
//   const ddpm::RowRange mine = ddpm::split_rows(n, P, p, align);
//   if (p == 0) ddpm::NpyRowWriter::create("out.npy.partial", {n, dim});
//   /* every part waits until the file exists, then: */
//   ddpm::NpyRowWriter out = ddpm::NpyRowWriter::open("out.npy.partial", {n, dim});
//   for (const ddpm::RowRange& chunk : ddpm::chunk_rows(std::vector{mine}, 1024, align)) {
//     std::vector<float> x(chunk.size() * dim);
//     sampler.sample({.x = x, .shape = {chunk.size(), dim},
//                     .noise = {.seed = 1, .first_sample = chunk.begin}}, predictor);
//     out.write_rows(chunk.begin, x);
//     out.sync();  // durable: a resumable job may now record the chunk as done
//   }
//   /* when every part is done, one renames out.npy.partial to out.npy */
//
// ddpm::ChunkedOutput (chunked_output.h) does all of this for a job's output
// files with a lock, a resumable manifest of checksummed chunks and clean-up:
// use it unless you need these parts alone.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ddpm/npy.h"

namespace ddpm {

// Rows [begin, end) of a batch.
struct RowRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  bool empty() const { return end <= begin; }
  bool operator==(const RowRange&) const = default;
};

// Part `part` of `parts` of the rows [0, rows): contiguous and in order, the
// parts' sizes differing by at most one block of `align` rows (the first
// parts have one block more; with align = 1, the first rows % parts parts
// have one more row), every part beginning at a multiple of `align`. Parts
// beyond the rows are empty. Throws ddpm::Error for rows < 0, parts < 1,
// a part outside [0, parts) or align < 1.
RowRange split_rows(std::int64_t rows, int parts, int part, std::int64_t align = 1);

// The same over the rows of several ranges taken in order (the rows still to
// do of a resumed job): part `part` gets a contiguous run of those rows, as
// one or more ranges, cut only at multiples of `align`. Ranges must be
// ordered and disjoint.
std::vector<RowRange> split_rows(std::span<const RowRange> ranges, int parts, int part,
                                 std::int64_t align = 1);

// The ranges cut into pieces of at most `chunk_rows` rows, in order (a range
// that is not a multiple of chunk_rows ends with a shorter piece). With
// align > 1, chunk_rows is first rounded up to a multiple of align and the
// cuts fall on multiples of align (a range that begins between two
// multiples starts with a shorter piece). Throws ddpm::Error for
// chunk_rows < 1 or align < 1.
std::vector<RowRange> chunk_rows(std::span<const RowRange> ranges, std::int64_t chunk_rows,
                                 std::int64_t align = 1);

// chunk_rows rounded up to a multiple of align (what chunk_rows() uses).
std::int64_t aligned_chunk_rows(std::int64_t chunk_rows, std::int64_t align);

// The rows of [0, rows) not covered by `done` (any order, overlaps allowed),
// as ordered disjoint ranges.
std::vector<RowRange> rows_not_in(std::int64_t rows, std::span<const RowRange> done);

// A float32 .npy array (C order) written by rows at their byte offsets, by one
// process or several at once: rows are disjoint byte ranges, so processes
// writing different rows never touch each other's bytes. Rows not yet written
// read as zeros. Errors are ddpm::Error("cannot write <path>: <reason>").
// The file is written in place: write it under a temporary name and rename it
// when every row is done (the ddpm CLI does, with a manifest for --resume).
class NpyRowWriter {
 public:
  // Creates `path` (it must not exist) with the header for `shape` (first
  // axis the rows) and room for every row (sparse where the file system
  // allows), mode 0666 less the umask.
  static NpyRowWriter create(const std::string& path, const std::vector<std::int64_t>& shape);
  // Opens an existing file, which must be a regular file (not a symbolic
  // link) holding a float32 .npy of exactly `shape` and size (as create()
  // leaves it), to write rows into it.
  static NpyRowWriter open(const std::string& path, const std::vector<std::int64_t>& shape);

  NpyRowWriter(NpyRowWriter&& other) noexcept;
  NpyRowWriter& operator=(NpyRowWriter&& other) noexcept;
  NpyRowWriter(const NpyRowWriter&) = delete;
  NpyRowWriter& operator=(const NpyRowWriter&) = delete;
  ~NpyRowWriter();

  const std::string& path() const { return path_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t rows() const { return shape_.front(); }
  std::int64_t row_size() const { return row_size_; }         // floats per row
  std::uint64_t data_offset() const { return data_offset_; }  // bytes before row 0
  // The open file (read and write), e.g. to fstat it or read rows back;
  // -1 once closed.
  int descriptor() const { return fd_; }

  // Writes rows [first_row, first_row + data.size() / row_size()); data.size()
  // must be a whole number of rows inside the array.
  void write_rows(std::int64_t first_row, std::span<const float> data);
  // Makes every row written so far durable (fdatasync): after it returns, a
  // crash of the process or the machine does not lose them.
  void sync();
  // Closes the file, reporting a failed close (the destructor ignores it).
  void close();

 private:
  NpyRowWriter(std::string path, std::vector<std::int64_t> shape, int fd);

  std::string path_;
  std::vector<std::int64_t> shape_;
  std::int64_t row_size_ = 1;
  std::uint64_t data_offset_ = 0;
  int fd_ = -1;
};


}  // namespace ddpm
