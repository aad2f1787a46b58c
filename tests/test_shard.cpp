// Splitting a job by rows (include/ddpm/shard.h): the split itself, the
// .npy written and read by rows at their offsets, and the promise behind
// them: a batch sampled in parts, each with its own first_sample, equals the
// batch sampled at once bit for bit, for every predictor and step rule.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "ddpm/ddpm.h"
#include "npy_bytes.h"
#include "scratch_dir.h"
#include "test_support.h"

namespace ddpm {
namespace {

using test::ScratchDir;

std::ostream& operator<<(std::ostream& out, const RowRange& r) {
  return out << "[" << r.begin << ", " << r.end << ")";
}

// ---------------------------------------------------------------------------
// split_rows, chunk_rows, rows_not_in

struct SplitCase {
  std::int64_t rows;
  int parts;
};
std::ostream& operator<<(std::ostream& out, const SplitCase& c) {
  return out << c.rows << " rows in " << c.parts << " parts";
}

class SplitRows : public ::testing::TestWithParam<SplitCase> {};

TEST_P(SplitRows, PartsAreContiguousInOrderAndDifferByAtMostOneRow) {
  const auto [rows, parts] = GetParam();
  std::int64_t next = 0, smallest = rows, largest = 0;
  for (int p = 0; p < parts; ++p) {
    const RowRange part = split_rows(rows, parts, p);
    EXPECT_EQ(part.begin, next) << "part " << p;
    EXPECT_GE(part.size(), 0);
    next = part.end;
    smallest = std::min(smallest, part.size());
    largest = std::max(largest, part.size());
  }
  EXPECT_EQ(next, rows);
  EXPECT_LE(largest - smallest, 1);
}

INSTANTIATE_TEST_SUITE_P(Sizes, SplitRows,
                         ::testing::Values(SplitCase{0, 1}, SplitCase{0, 3}, SplitCase{1, 1},
                                           SplitCase{2, 3}, SplitCase{10, 3}, SplitCase{11, 3},
                                           SplitCase{12, 3}, SplitCase{7, 7}, SplitCase{5, 8},
                                           SplitCase{1000003, 64}));

TEST(SplitRows, TheFirstPartsTakeTheRemainder) {
  EXPECT_EQ(split_rows(11, 3, 0), (RowRange{0, 4}));
  EXPECT_EQ(split_rows(11, 3, 1), (RowRange{4, 8}));
  EXPECT_EQ(split_rows(11, 3, 2), (RowRange{8, 11}));
  EXPECT_TRUE(split_rows(2, 3, 2).empty());
}

TEST(SplitRows, RefusesImpossibleArguments) {
  EXPECT_THROW(split_rows(-1, 2, 0), Error);
  EXPECT_THROW(split_rows(10, 0, 0), Error);
  EXPECT_THROW(split_rows(10, 2, 2), Error);
  EXPECT_THROW(split_rows(10, 2, -1), Error);
  const std::vector<RowRange> overlapping{{0, 5}, {4, 8}};
  EXPECT_THROW(split_rows(overlapping, 2, 0), Error);
}

TEST(SplitRows, RangesAreSharedByTheirRowsInOrder) {
  // 10 rows still to do in three pieces, shared by 3 parts: 4, 3 and 3 rows.
  const std::vector<RowRange> remaining{{2, 5}, {7, 8}, {20, 26}};
  EXPECT_EQ(split_rows(remaining, 3, 0), (std::vector<RowRange>{{2, 5}, {7, 8}}));
  EXPECT_EQ(split_rows(remaining, 3, 1), (std::vector<RowRange>{{20, 23}}));
  EXPECT_EQ(split_rows(remaining, 3, 2), (std::vector<RowRange>{{23, 26}}));
  EXPECT_TRUE(split_rows(remaining, 20, 19).empty());
}

TEST(SplitRows, AlignedPartsBeginAtMultiplesOfTheAlignment) {
  // 300 rows in blocks of 64 (the last one 44 rows) shared by 2 and by 3 parts.
  EXPECT_EQ(split_rows(300, 2, 0, 64), (RowRange{0, 192}));
  EXPECT_EQ(split_rows(300, 2, 1, 64), (RowRange{192, 300}));
  EXPECT_EQ(split_rows(300, 3, 0, 64), (RowRange{0, 128}));
  EXPECT_EQ(split_rows(300, 3, 1, 64), (RowRange{128, 256}));
  EXPECT_EQ(split_rows(300, 3, 2, 64), (RowRange{256, 300}));
  // Fewer blocks than parts: the later parts are empty.
  EXPECT_EQ(split_rows(20, 2, 0, 64), (RowRange{0, 20}));
  EXPECT_TRUE(split_rows(20, 2, 1, 64).empty());
  EXPECT_THROW(split_rows(20, 2, 0, 0), Error);
  for (const std::int64_t rows : {0, 1, 63, 64, 65, 1000}) {
    for (int parts = 1; parts <= 5; ++parts) {
      std::int64_t next = 0;
      for (int p = 0; p < parts; ++p) {
        const RowRange part = split_rows(rows, parts, p, 64);
        if (part.empty()) continue;
        EXPECT_EQ(part.begin, next);
        EXPECT_EQ(part.begin % 64, 0);
        next = part.end;
      }
      EXPECT_EQ(next, rows);
    }
  }
}

TEST(SplitRows, AlignedRangesAreCutOnlyAtMultiples) {
  // A resumed job's rows: the block [64, 128) is partly done.
  const std::vector<RowRange> remaining{{0, 64}, {100, 200}};
  // Pieces [0,64) [100,128) [128,192) [192,200): two parts of two pieces.
  EXPECT_EQ(split_rows(remaining, 2, 0, 64), (std::vector<RowRange>{{0, 64}, {100, 128}}));
  EXPECT_EQ(split_rows(remaining, 2, 1, 64), (std::vector<RowRange>{{128, 200}}));
  EXPECT_THROW(split_rows(remaining, 2, 1, -1), Error);
}

TEST(SplitRows, TheLastBlockOfTheIndexSpaceEnds) {
  // The next multiple of 64 after these rows is past INT64_MAX: the pieces
  // end with the range (this looped forever, growing, when it overflowed).
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::vector<RowRange> last{{kMax - 10, kMax - 6}};
  EXPECT_EQ(split_rows(last, 2, 0, 64), last);
  EXPECT_TRUE(split_rows(last, 2, 1, 64).empty());
  EXPECT_EQ(chunk_rows(last, 1, 64), last);
  const std::vector<RowRange> negative{{-5, 3}};
  EXPECT_THROW(split_rows(negative, 2, 0, 64), Error);
  EXPECT_THROW(chunk_rows(negative, 4, 64), Error);
}

TEST(ChunkRows, AlignedChunksAreWholeBlocks) {
  const std::vector<RowRange> ranges{{0, 150}, {200, 300}};
  // 100 rows rounds up to 128; cuts fall on multiples of 64.
  EXPECT_EQ(aligned_chunk_rows(100, 64), 128);
  EXPECT_EQ(aligned_chunk_rows(128, 64), 128);
  EXPECT_EQ(chunk_rows(ranges, 100, 64),
            (std::vector<RowRange>{{0, 128}, {128, 150}, {200, 300}}));
  EXPECT_THROW(chunk_rows(ranges, 100, 0), Error);
  EXPECT_THROW(aligned_chunk_rows(0, 64), Error);
}

TEST(ChunkRows, PiecesHaveAtMostTheChunkSizeAndCoverEveryRow) {
  const std::vector<RowRange> ranges{{0, 10}, {12, 13}, {20, 27}};
  const std::vector<RowRange> chunks = chunk_rows(ranges, 4);
  EXPECT_EQ(chunks, (std::vector<RowRange>{{0, 4}, {4, 8}, {8, 10}, {12, 13}, {20, 24}, {24, 27}}));
  EXPECT_THROW(chunk_rows(ranges, 0), Error);
  EXPECT_THROW(chunk_rows(ranges, -3), Error);
}

TEST(RowsNotIn, IsTheComplementOfAnyCollectionOfRanges) {
  const std::vector<RowRange> done{{8, 12}, {0, 3}, {2, 4}, {11, 13}, {19, 40}, {6, 6}};
  EXPECT_EQ(rows_not_in(20, done), (std::vector<RowRange>{{4, 8}, {13, 19}}));
  EXPECT_EQ(rows_not_in(5, {}), (std::vector<RowRange>{{0, 5}}));
  const std::vector<RowRange> all{{0, 5}};
  EXPECT_TRUE(rows_not_in(5, all).empty());
}

// ---------------------------------------------------------------------------
// NpyRowWriter and NpyRowReader

class NpyRows : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }
  ScratchDir dir_;
};

TEST_F(NpyRows, RowsWrittenInAnyOrderByTwoWritersMakeTheWholeArray) {
  const std::vector<std::int64_t> shape{7, 2, 3};
  const std::vector<float> data = test::random_values(42, 1);
  NpyRowWriter::create(path("a.npy"), shape).close();
  NpyRowWriter first = NpyRowWriter::open(path("a.npy"), shape);
  NpyRowWriter second = NpyRowWriter::open(path("a.npy"), shape);
  EXPECT_EQ(first.row_size(), 6);
  EXPECT_EQ(first.data_offset() % 64, 0u);
  for (const RowRange rows : {RowRange{5, 7}, RowRange{0, 1}, RowRange{3, 5}, RowRange{1, 3}}) {
    NpyRowWriter& writer = rows.begin % 2 == 0 ? first : second;
    writer.write_rows(rows.begin,
                      std::span(data).subspan(static_cast<std::size_t>(rows.begin * 6),
                                              static_cast<std::size_t>(rows.size() * 6)));
  }
  first.sync();
  second.sync();
  first.close();
  second.close();
  const NpyArray read = read_npy(path("a.npy"));
  EXPECT_EQ(read.shape, shape);
  EXPECT_EQ(read.data, data);
}

TEST_F(NpyRows, RowsNotWrittenAreZeros) {
  NpyRowWriter writer = NpyRowWriter::create(path("a.npy"), {4, 2});
  const std::vector<float> row{1.5f, -2.0f};
  writer.write_rows(2, row);
  writer.close();
  EXPECT_EQ(read_npy(path("a.npy")).data, (std::vector<float>{0, 0, 0, 0, 1.5f, -2.0f, 0, 0}));
}

TEST_F(NpyRows, CreateRefusesAnExistingFileAndOpenAnotherArray) {
  write_file_atomically(path("x.npy"), "not an array");
  EXPECT_THROW(NpyRowWriter::create(path("x.npy"), {2, 2}), Error);
  std::ifstream kept(path("x.npy"));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), "not an array");
  EXPECT_THROW(NpyRowWriter::open(path("x.npy"), {2, 2}), Error);
  NpyRowWriter::create(path("a.npy"), {3, 2}).close();
  try {
    NpyRowWriter::open(path("a.npy"), {2, 3});
    FAIL() << "opened a (3, 2) array as (2, 3)";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shape (3, 2)"), std::string::npos) << e.what();
  }
  const std::vector<double> doubles(6, 1.0);
  write_npy(path("d.npy"), {3, 2}, doubles.data());
  EXPECT_THROW(NpyRowWriter::open(path("d.npy"), {3, 2}), Error);  // float64, not float32
  EXPECT_THROW(NpyRowWriter::open(path("missing.npy"), {3, 2}), Error);
}

TEST_F(NpyRows, WritesOutsideTheArrayOrOfPartialRowsAreRefused) {
  NpyRowWriter writer = NpyRowWriter::create(path("a.npy"), {3, 2});
  const std::vector<float> two_rows(4, 1.0f), three_floats(3, 1.0f);
  EXPECT_THROW(writer.write_rows(2, two_rows), Error);
  EXPECT_THROW(writer.write_rows(-1, two_rows), Error);
  EXPECT_THROW(writer.write_rows(0, three_floats), Error);
  writer.write_rows(1, two_rows);
  EXPECT_THROW(NpyRowWriter::create(path("s.npy"), {}), Error);
}

TEST_F(NpyRows, ReaderConvertsRowsAsReadNpyDoes) {
  const std::vector<double> values{0.5, -1.0, 2.0, 3.25, 1e-3, 7.0};
  write_npy(path("d.npy"), {3, 2}, values.data());
  const NpyRowReader reader(path("d.npy"));
  EXPECT_EQ(reader.rows(), 3);
  EXPECT_EQ(reader.row_size(), 2);
  std::vector<float> rows(4);
  reader.read_rows(1, rows);
  const NpyArray whole = read_npy(path("d.npy"));
  EXPECT_EQ(rows, std::vector<float>(whole.data.begin() + 2, whole.data.end()));
  std::vector<float> too_many(8);
  EXPECT_THROW(reader.read_rows(0, too_many), Error);
  std::vector<float> one_row(2);
  EXPECT_THROW(reader.read_rows(3, one_row), Error);

  // Whole numbers, and an error that names the element's index in the whole array.
  std::ofstream(path("i.npy"), std::ios::binary)
      << test::npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }",
                         test::double_bytes({3, 4, 5.5, 6}));
  const NpyRowReader steps(path("i.npy"));
  std::vector<std::int64_t> first_two(2), last_two(2);
  steps.read_rows(0, first_two);
  EXPECT_EQ(first_two, (std::vector<std::int64_t>{3, 4}));
  try {
    steps.read_rows(2, last_two);
    FAIL() << "5.5 read as a whole number";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("element 2 is 5.5"), std::string::npos) << e.what();
  }
}

TEST_F(NpyRows, ReaderRefusesTruncatedFilesAndPipesWithoutWaiting) {
  std::ofstream(path("short.npy"), std::ios::binary) << test::npy_image(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }", test::float_bytes({1, 2, 3}));
  EXPECT_THROW(NpyRowReader(path("short.npy")), Error);
  ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);
  try {
    NpyRowReader reader(path("fifo"));  // no writer: would block if it waited for one
    FAIL() << "a FIFO was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("regular file"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------
// The promise: parts of a batch, each sampled on its own with its own
// first_sample and written at its rows' offsets, make the batch sampled at once.

struct RuleCase {
  SamplerKind sampler;
  int inference_steps;
};
std::ostream& operator<<(std::ostream& out, const RuleCase& c) {
  return out << to_string(c.sampler) << " with " << c.inference_steps << " steps";
}

SamplerOptions options_for(const RuleCase& rule, PredictionType prediction) {
  SamplerOptions options;
  options.backend = Backend::cpu;
  options.threads = 2;
  options.sampler = rule.sampler;
  options.num_inference_steps = rule.inference_steps;
  options.prediction_type = prediction;
  if (rule.sampler == SamplerKind::ddim) options.eta = 0.5;  // draws noise too
  return options;
}

struct WholeAndParts {
  std::vector<float> whole, parts;
};

// The batch of `shape` sampled whole, and sampled in `parts` parts (each in
// chunks of `chunk` rows, cut at multiples of the predictor's
// split_alignment() in global samples) written into one file by rows and
// read back.
template <class MakePredictor>
WholeAndParts sample_whole_and_in_parts(const Schedule& schedule, const SamplerOptions& options,
                                        Shape shape, int parts, std::int64_t chunk,
                                        const std::vector<std::int32_t>& labels, double guidance,
                                        MakePredictor make_predictor) {
  constexpr std::int64_t kFirst = 1000;  // the job's own --first-sample
  Sampler sampler(schedule, options);
  std::vector<float> whole(static_cast<std::size_t>(shape.size()));
  {
    auto predictor = make_predictor();
    SampleRequest request{.x = whole, .shape = shape, .noise = {.seed = 5, .first_sample = kFirst}};
    request.class_labels = labels;
    request.guidance_scale = guidance;
    sampler.sample(request, *predictor);
  }
  ScratchDir dir;
  const std::string file = dir / "parts.npy";
  NpyRowWriter::create(file, {shape.batch, shape.dim}).close();
  for (int p = 0; p < parts; ++p) {
    // Each part as its own process would: its own sampler, predictor and file handle.
    Sampler part_sampler(schedule, options);
    auto predictor = make_predictor();
    const std::int64_t align = predictor->split_alignment();
    NpyRowWriter out = NpyRowWriter::open(file, {shape.batch, shape.dim});
    // Split in global samples, where the alignment counts from.
    const std::vector<RowRange> job{{kFirst, kFirst + shape.batch}};
    for (RowRange rows : chunk_rows(split_rows(job, parts, p, align), chunk, align)) {
      rows = {rows.begin - kFirst, rows.end - kFirst};
      std::vector<float> x(static_cast<std::size_t>(rows.size() * shape.dim));
      SampleRequest request{.x = x,
                            .shape = {rows.size(), shape.dim},
                            .noise = {.seed = 5, .first_sample = kFirst + rows.begin}};
      if (!labels.empty()) {
        request.class_labels = std::span(labels).subspan(static_cast<std::size_t>(rows.begin),
                                                         static_cast<std::size_t>(rows.size()));
      }
      request.guidance_scale = guidance;
      part_sampler.sample(request, *predictor);
      out.write_rows(rows.begin, x);
    }
    out.close();
  }
  return {std::move(whole), read_npy(file).data};
}

class PartsOfABatch : public ::testing::TestWithParam<RuleCase> {};

TEST_P(PartsOfABatch, GaussianPriorIsBitIdentical) {
  const Schedule schedule = Schedule::linear(100, 1e-4, 0.2);
  const Shape shape{23, 37};
  const WholeAndParts result = sample_whole_and_in_parts(
      schedule, options_for(GetParam(), PredictionType::epsilon), shape, 3, 4, {}, 1.0,
      [] { return make_predictor(R"({"type": "gaussian", "mean": 0.5, "std": 0.3})"); });
  EXPECT_TRUE(test::bit_identical(result.whole, result.parts));
}

TEST_P(PartsOfABatch, GaussianMixtureIsBitIdentical) {
  const Schedule schedule = Schedule::linear(100, 1e-4, 0.2);
  const Shape shape{19, 2};
  const WholeAndParts result = sample_whole_and_in_parts(
      schedule, options_for(GetParam(), PredictionType::epsilon), shape, 4, 3, {}, 1.0, [] {
        return make_predictor(R"({"type": "gmm", "weights": [0.3, 0.7],
                                  "means": [[-1, 1], [2, 0.5]], "stds": [0.2, 0.4]})");
      });
  EXPECT_TRUE(test::bit_identical(result.whole, result.parts));
}

// The committed digits model, class-conditional with classifier-free
// guidance: rows see their own labels in any part, and parts cut at its
// 64-sample blocks (the job starts at sample 1000, inside a block) give the
// same bits, although OpenBLAS rounds a row differently in products of
// different sizes: the network computes each block alone.
TEST_P(PartsOfABatch, ConditionalMlpWithGuidanceIsBitIdentical) {
  MlpPredictor probe(DDPM_SOURCE_DIR "/models/digits.safetensors", {.threads = 2});
  EXPECT_EQ(probe.split_alignment(), 64);
  const Schedule schedule = Schedule::from_spec(probe.scheduler_config().schedule);
  const Shape shape{150, probe.data_dim()};
  std::vector<std::int32_t> labels(static_cast<std::size_t>(shape.batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i % 10);
  const WholeAndParts result = sample_whole_and_in_parts(
      schedule, options_for(GetParam(), probe.prediction_type()), shape, 3, 2, labels, 2.5, [] {
        return std::make_unique<MlpPredictor>(DDPM_SOURCE_DIR "/models/digits.safetensors",
                                              MlpPredictorOptions{.threads = 2});
      });
  EXPECT_TRUE(test::bit_identical(result.whole, result.parts));
}

INSTANTIATE_TEST_SUITE_P(
    StepRules, PartsOfABatch,
    ::testing::Values(RuleCase{SamplerKind::ddpm, 25}, RuleCase{SamplerKind::ddim, 20},
                      RuleCase{SamplerKind::euler, 20}, RuleCase{SamplerKind::euler_ancestral, 20},
                      RuleCase{SamplerKind::dpmpp_2m, 20}, RuleCase{SamplerKind::dpmpp_2m_sde, 20}),
    [](const ::testing::TestParamInfo<RuleCase>& info) { return to_string(info.param.sampler); });

}  // namespace
}  // namespace ddpm
