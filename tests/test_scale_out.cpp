// Chunked and distributed runs of the ddpm program (src/cli/chunked_run.h):
// one process in chunks (--chunk-rows, --resume) and several under mpirun
// write the same file, bit for bit, as one process with one batch; faults
// stop every rank with the failing rank's message and keep the rows done for
// --resume; bad input leaves nothing behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_fixture.h"
#include "npy_bytes.h"
#include "test_support.h"

#ifndef DDPM_MPIEXEC
#error "DDPM_MPIEXEC must be the MPI launcher and its flags, or empty without MPI"
#endif

namespace ddpm::test {
namespace {

using Args = std::vector<std::string>;

Args plus(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

int occurrences(const std::string& text, const std::string& what) {
  int count = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++count;
  }
  return count;
}

// The processes whose parent is `parent` (the ranks mpirun started).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    if (rest >> state >> ppid && ppid == parent) {
      children.push_back(static_cast<pid_t>(std::stol(entry.path().filename().string())));
    }
  }
  return children;
}

// A small job with a short schedule, so that every test runs in moments.
const Args kSample{"sample", "--predictor", "gaussian", "--mean",    "0.5",
                   "--std",  "0.3",         "--steps",  "40",        "--beta-end",
                   "0.3",    "--seed",      "7",        "--backend", "cpu"};

class ScaleOut : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // mpirun as root (CI containers) must be allowed explicitly; harmless otherwise.
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    // One machine: shared memory only, no probing of network interfaces.
    ::setenv("OMPI_MCA_btl", "self,vader", 1);
    ::setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
  }

  // ASAN_OPTIONS for the ranks of a sanitized ddpm: its address and UB checks
  // stay on, its leak check is off. Open MPI keeps allocations until exit in
  // components it unloads at MPI_Finalize, so LeakSanitizer reports them
  // without a module name that a suppression could match. ddpm's own code
  // is leak-checked by the one-process tests, which run the same paths.
  static std::string rank_asan_options() {
    const char* options = std::getenv("ASAN_OPTIONS");
    return std::string(options ? options : "") + ":detect_leaks=0";
  }

  // The words that start `ranks` processes of ddpm under the MPI launcher.
  std::string launch(int ranks) const {
    return "ASAN_OPTIONS=" + shell_quote(rank_asan_options()) + " " + DDPM_MPIEXEC + " -n " +
           std::to_string(ranks) + " " + shell_quote(DDPM_CLI_PATH);
  }

  // mpirun -n ranks ddpm args.
  RunResult run_ranks(int ranks, const Args& args) const {
    std::string command = launch(ranks);
    for (const std::string& arg : args) command += " " + quoted_arg(arg);
    return run_shell(command);
  }

  // One job of several programs (MPMD): each (launcher flags, args) block is one rank.
  RunResult run_blocks(const std::vector<std::pair<std::string, Args>>& blocks) const {
    std::string command = "ASAN_OPTIONS=" + shell_quote(rank_asan_options()) + " " + DDPM_MPIEXEC;
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const auto& [launcher_flags, args] = blocks[i];
      if (i > 0) command += " :";
      if (!launcher_flags.empty()) command += " " + launcher_flags;
      command += " -n 1 " + shell_quote(DDPM_CLI_PATH);
      for (const std::string& arg : args) command += " " + quoted_arg(arg);
    }
    return run_shell(command);
  }

  void skip_without_mpi() const {
    if (std::string(DDPM_MPIEXEC).empty()) {
      GTEST_SKIP() << "ddpm was built without MPI (no MPI found by CMake)";
    }
  }

  // The reference: one process, one batch.
  std::string one_process(const Args& args, const std::string& name) const {
    const RunResult r = run(plus(args, {"--out", "@" + name}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_file(path(name));
  }

  nlohmann::json manifest(const std::string& name) const {
    return nlohmann::json::parse(read_file(path(name + ".manifest")));
  }

  // The rows of the chunks a manifest lists as done: [[first, end], ...].
  nlohmann::json chunks_done(const std::string& name) const {
    const nlohmann::json listed = manifest(name);
    nlohmann::json rows = nlohmann::json::array();
    for (const nlohmann::json& chunk : listed["done"]) rows.push_back(chunk["rows"]);
    return rows;
  }

  // x_T for 20 rows of 6 with a NaN in row 10 (the engine refuses it when
  // that row's chunk is reached), or the same without it.
  void write_initial(const std::string& name, bool with_nan) const {
    std::vector<float> x = values(120, 9);
    if (with_nan) x[10 * 6 + 3] = std::numeric_limits<float>::quiet_NaN();
    write_array(name, {20, 6}, x);
  }

  // Runs a chunked job whose x_T has a NaN in row 10 (init.npy), which leaves
  // rows 0 to 7 done for --resume, then fixes init.npy; returns the job.
  Args leave_rows_0_to_7_done() const {
    write_initial("init.npy", true);
    const Args job =
        plus(kSample, {"--initial", "@init.npy", "--chunk-rows", "4", "--out", "@out.npy"});
    EXPECT_EQ(run(job).exit_code, 1);
    EXPECT_EQ(chunks_done("out.npy"), nlohmann::json::parse("[[0, 4], [4, 8]]"));
    write_initial("init.npy", false);
    return job;
  }

  // The rows done so far of a run in progress (0 until its manifest lists some).
  std::int64_t rows_recorded(const std::string& name) const {
    if (!fs::exists(path(name + ".manifest"))) return 0;
    try {
      return manifest(name)["rows_done"].get<std::int64_t>();
    } catch (const nlohmann::json::exception&) {
      return 0;
    }
  }

  // Takes NAME.lock as a running ddpm holds it, as "process 4242 on
  // elsewhere" (-1 if it cannot); closing the descriptor lets go.
  int hold_lock(const std::string& name) const {
    const int fd = ::open(path(name + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && (::write(fd, "process 4242 on elsewhere\n", 26) != 26 || ::flock(fd, LOCK_EX) != 0)) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // The line a run refused by hold_lock(name)'s lock prints.
  std::string refused_by_lock(const std::string& name) const {
    return "ddpm: error: cannot write " + path(name) +
           ": another run is writing it (process 4242 on elsewhere holds " + path(name + ".lock") +
           "); wait for it to end, or stop it\n";
  }

  // The work directory without temporaries a SIGKILL may leave (NAME.tmp-PID-N).
  std::vector<std::string> listing_without_temporaries() const {
    std::vector<std::string> names = listing();
    std::erase_if(names, [](const std::string& n) { return n.find(".tmp-") != std::string::npos; });
    return names;
  }
};

// A job long enough to be stopped part-way: 150 chunks, each made durable
// (fdatasync) and recorded before the next.
const Args kLongJob{"sample",  "--mean",   "0.5",     "--std",     "0.3",
                    "--shape", "300,1024", "--steps", "500",       "--beta-end",
                    "0.05",    "--seed",   "3",       "--backend", "cpu"};

// ---------------------------------------------------------------------------
// One process, in chunks.

class ChunkedRule : public ScaleOut, public ::testing::WithParamInterface<const char*> {};

TEST_P(ChunkedRule, ChunksThatDoNotDivideTheBatchEqualOneBatch) {
  const Args job =
      plus(kSample, {"--shape", "10,33", "--sampler", GetParam(), "--first-sample", "5"});
  const std::string expected = one_process(plus(job, {"--inference-steps", "12"}), "one.npy");
  const RunResult r =
      run(plus(job, {"--inference-steps", "12", "--chunk-rows", "3", "--out", "@chunked.npy"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("chunks of 3 rows"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("chunked.npy")) == expected);
  EXPECT_EQ(listing(), (std::vector<std::string>{"chunked.npy", "one.npy"}));
}

INSTANTIATE_TEST_SUITE_P(Rules, ChunkedRule,
                         ::testing::Values("ddpm", "ddim", "euler", "euler_ancestral", "dpmpp_2m",
                                           "dpmpp_2m_sde"));

TEST_F(ScaleOut, ChunkedMixtureAndForwardEqualOneBatch) {
  test::write_bytes(
      path("gmm.json"),
      R"({"weights": [0.4, 0.6], "means": [[0, 1, 2], [-1, 0, 1]], "stds": [0.3, 0.5]})");
  const Args gmm{"sample",  "--predictor", "gmm",     "--gmm",     "@gmm.json",
                 "--shape", "11,3",        "--steps", "30",        "--beta-end",
                 "0.3",     "--seed",      "2",       "--backend", "cpu"};
  const std::string expected = one_process(gmm, "one.npy");
  ASSERT_EQ(run(plus(gmm, {"--chunk-rows", "4", "--out", "@chunked.npy"})).exit_code, 0);
  EXPECT_TRUE(read_file(path("chunked.npy")) == expected);

  write_array("x0.npy", {9, 2, 3}, values(54, 3));
  const std::vector<double> steps{0, 10, 999, 5, 500, 7, 1, 2, 3};
  write_npy(path("t.npy"), {9}, steps.data());
  const Args forward{"forward", "--x0",      "@x0.npy", "--t-per-sample", "@t.npy", "--seed",
                     "4",       "--backend", "cpu"};
  ASSERT_EQ(
      run(plus(forward, {"--out", "@a.npy", "--noise-out", "@an.npy", "--velocity-out", "@av.npy"}))
          .exit_code,
      0);
  const RunResult r = run(plus(forward, {"--out", "@b.npy", "--noise-out", "@bn.npy",
                                         "--velocity-out", "@bv.npy", "--chunk-rows", "2"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(path("b.npy")) == read_file(path("a.npy")));
  EXPECT_TRUE(read_file(path("bn.npy")) == read_file(path("an.npy")));
  EXPECT_TRUE(read_file(path("bv.npy")) == read_file(path("av.npy")));
}

TEST_F(ScaleOut, ChunkSizeZeroIsAUsageError) {
  const RunResult r =
      run(plus(kSample, {"--shape", "4,3", "--chunk-rows", "0", "--out", "@x.npy"}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("ddpm: error: --chunk-rows: the chunk size must be a whole number of rows "
                       ">= 1 or 'auto', got '0'"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(listing().empty());
}

TEST_F(ScaleOut, ASampleIndexPastInt64IsRefusedBeforeAnyFile) {
  for (const char* first : {"9223372036854775805", "9223372036854775744"}) {
    const RunResult r = run(plus(kSample, {"--shape", "70,3", "--chunk-rows", "1",
                                           "--first-sample", first, "--out", "@x.npy"}));
    EXPECT_EQ(r.exit_code, 1) << first;
    EXPECT_NE(r.err.find("overflows the 64-bit sample index"), std::string::npos) << r.err;
    EXPECT_TRUE(listing().empty());
  }
}

TEST_F(ScaleOut, AChunkedRunWritesAFileNotAStream) {
  // Options that exclude each other: a usage error, before any output is
  // opened (so "-" on a terminal, as under mpirun, gets this message too).
  for (const char* out : {"/dev/stderr", "-", "/dev/null"}) {
    const RunResult r = run(plus(kSample, {"--shape", "4,3", "--chunk-rows", "2", "--out", out}));
    EXPECT_EQ(r.exit_code, 2) << out;
    EXPECT_NE(r.err.find(std::string("--out ") + out +
                         ": a chunked or distributed run writes its rows in place into a file, "
                         "not a stream"),
              std::string::npos)
        << r.err;
  }
  const RunResult forward =
      run({"forward", "--x0", "/dev/null", "--t", "3", "--noise-out", "-", "--out", "@x.npy",
           "--resume"});
  EXPECT_EQ(forward.exit_code, 2);
  EXPECT_NE(forward.err.find("--noise-out -: a chunked"), std::string::npos) << forward.err;
  EXPECT_TRUE(listing().empty());
}

TEST_F(ScaleOut, AFailureKeepsTheRowsDoneAndResumeFinishesBitIdentical) {
  write_initial("good.npy", false);
  write_initial("init.npy", true);
  const Args job =
      plus(kSample, {"--initial", "@init.npy", "--chunk-rows", "4", "--out", "@out.npy"});
  const std::string expected = one_process(plus(kSample, {"--initial", "@good.npy"}), "one.npy");

  RunResult r = run(job);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("ddpm: error: rows 8 to 11: initial x_T contains a non-finite value"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("8 of 20 rows are done"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("with --resume to finish"), std::string::npos) << r.err;
  EXPECT_EQ(chunks_done("out.npy"), nlohmann::json::parse("[[0, 4], [4, 8]]"));
  EXPECT_FALSE(fs::exists(path("out.npy")));

  // Without --resume the leftovers are not overwritten...
  r = run(job);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("an unfinished run left"), std::string::npos) << r.err;
  // ...and --resume with other options is refused, naming them.
  r = run({"sample", "--predictor", "gaussian", "--mean",     "0.5",       "--std",
           "0.3",    "--steps",     "40",       "--beta-end", "0.3",       "--seed",
           "8",      "--backend",   "cpu",      "--initial",  "@init.npy", "--chunk-rows",
           "4",      "--out",       "@out.npy", "--resume"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--resume: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is from a run with other options (that run: --seed 7; this run: --seed 8)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(chunks_done("out.npy"), nlohmann::json::parse("[[0, 4], [4, 8]]"));

  // A manifest edited by hand (overlapping rows, rows out of order or not
  // whole, a total that is not the rows listed) is refused, naming the
  // place: resuming from it could put rows never computed into place. The
  // file is left as it was.
  const std::string written = read_file(path("out.npy.manifest"));
  struct Edit {
    const char* done;
    const char* expected;
  };
  for (const Edit& edit :
       {Edit{R"([[0, 4], [2, 6]])", "done[1].rows is [2,6]; expected rows after [0, 4)"},
        Edit{R"([[4, 8], [0, 4]])", "done[1].rows is [0,4]; expected rows after [4, 8)"},
        Edit{R"([[0, 4], [4, 7.5]])", "done[1].rows[1] is 7.5; expected a whole number of rows"}}) {
    nlohmann::json tampered = manifest("out.npy");
    const nlohmann::json rows = nlohmann::json::parse(edit.done);
    for (std::size_t i = 0; i < rows.size(); ++i) tampered["done"][i]["rows"] = rows[i];
    test::write_bytes(path("out.npy.manifest"), tampered.dump());
    r = run(plus(job, {"--resume"}));
    EXPECT_EQ(r.exit_code, 1) << edit.done;
    EXPECT_NE(r.err.find("not a manifest this ddpm wrote (" + std::string(edit.expected)),
              std::string::npos)
        << r.err;
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
  nlohmann::json tampered = nlohmann::json::parse(written);
  tampered["rows_done"] = 20;
  test::write_bytes(path("out.npy.manifest"), tampered.dump());
  r = run(plus(job, {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("rows_done is 20; expected the rows listed (8)"), std::string::npos) << r.err;
  // The job itself edited: the manifest names the field and both values.
  tampered = nlohmann::json::parse(written);
  tampered["shape"] = {21, 6};
  test::write_bytes(path("out.npy.manifest"), tampered.dump());
  r = run(plus(job, {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is from a run with another shape (that run: (21, 6); this run: (20, 6))"),
            std::string::npos)
      << r.err;
  tampered = nlohmann::json::parse(written);
  tampered["outputs"] = {"elsewhere.npy"};
  test::write_bytes(path("out.npy.manifest"), tampered.dump());
  r = run(plus(job, {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("is from a run with other outputs (that run: elsewhere.npy; this run: "
                       "out.npy)"),
            std::string::npos)
      << r.err;
  test::write_bytes(path("out.npy.manifest"), written);

  // The input fixed, --resume computes the rest, with another chunk size.
  write_initial("init.npy", false);
  r = run(plus(kSample,
               {"--initial", "@init.npy", "--chunk-rows", "5", "--out", "@out.npy", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("8 rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("out.npy")) == expected);
  EXPECT_EQ(listing(), (std::vector<std::string>{"good.npy", "init.npy", "one.npy", "out.npy"}));
}

TEST_F(ScaleOut, AFailureBeforeAnyRowIsDoneLeavesNothing) {
  std::vector<float> x = values(120, 9);
  x[3] = std::numeric_limits<float>::infinity();
  write_array("init.npy", {20, 6}, x);
  const RunResult r =
      run(plus(kSample, {"--initial", "@init.npy", "--chunk-rows", "4", "--out", "@out.npy"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("rows 0 to 3:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("--resume"), std::string::npos) << r.err;
  EXPECT_EQ(listing(), (std::vector<std::string>{"init.npy"}));
}

TEST_F(ScaleOut, ResumeAfterAKilledRunIsBitIdentical) {
  const pid_t pid =
      spawn(plus(kLongJob, {"--threads", "1", "--chunk-rows", "2", "--out", "@out.npy"}));
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 6000 && rows_recorded("out.npy") == 0; ++i) {  // at most a minute
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  const std::int64_t recorded = rows_recorded("out.npy");
  ASSERT_GT(recorded, 0);
  ASSERT_LT(recorded, 300) << "the run finished before it was killed";
  ASSERT_FALSE(fs::exists(path("out.npy")));

  const RunResult r = run(plus(kLongJob, {"--chunk-rows", "64", "--out", "@out.npy", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(recorded) + " rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("out.npy")) == one_process(kLongJob, "one.npy"));
  EXPECT_EQ(listing_without_temporaries(), (std::vector<std::string>{"one.npy", "out.npy"}));
}

// The digits network: its rows are computed in blocks of 64 global samples,
// so chunks round up to whole blocks, counted from global sample 0.
const Args kModelJob{"sample", "--model", source_file("models/digits.safetensors"),
                     "--shape", "150,64", "--class", "3", "--guidance-scale", "2",
                     "--sampler", "dpmpp_2m", "--inference-steps", "8", "--first-sample", "5",
                     "--seed", "11", "--backend", "cpu"};

TEST_F(ScaleOut, ChunkedNetworkRunsInWholeBlocksAndEqualsOneBatch) {
  const std::string expected = one_process(plus(kModelJob, {"--threads", "1"}), "one.npy");
  const RunResult r = run(plus(kModelJob, {"--chunk-rows", "10", "--out", "@chunked.npy"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("chunks of 64 rows"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("chunked.npy")) == expected);
}

// ---------------------------------------------------------------------------
// One owner per output, and a manifest that proves what it claims.

// The byte where row 0 begins in a .npy file (after its header).
std::uint64_t data_offset_of(const std::string& npy) {
  const std::string head = read_file(npy).substr(0, 10);
  return 10 + static_cast<unsigned char>(head[8]) + 256u * static_cast<unsigned char>(head[9]);
}

void overwrite(const std::string& file, std::uint64_t offset, const std::string& bytes) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << file;
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

TEST_F(ScaleOut, AManifestThatClaimsRowsItCannotProveHasThemComputed) {
  const Args job = leave_rows_0_to_7_done();
  const std::string expected = one_process(plus(kSample, {"--initial", "@init.npy"}), "one.npy");

  // The manifest claims every row (the rows past 8 were never computed: the
  // partial file holds zeros there), and a byte of row 5 has changed since
  // it was written.
  nlohmann::json lie = manifest("out.npy");
  lie["done"].push_back({{"rows", {8, 20}}, {"xxh3", {"0123456789abcdef"}}});
  lie["rows_done"] = 20;
  test::write_bytes(path("out.npy.manifest"), lie.dump());
  overwrite(path("out.npy.partial"), data_offset_of(path("out.npy.partial")) + 5 * 6 * 4 + 8,
            std::string("\x12\x34\x56\x78", 4));

  const RunResult r = run(plus(job, {"--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("lists rows 4 to 7 as done, but their bytes do not match its checksum: "
                       "computing them again"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("lists rows 8 to 19 as done, but"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("4 rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("out.npy")) == expected) << "rows never computed were published";
  EXPECT_EQ(listing(), (std::vector<std::string>{"init.npy", "one.npy", "out.npy"}));
}

TEST_F(ScaleOut, ARowChangedDuringTheRunIsNeverPublished) {
  const Args job = plus(kLongJob, {"--threads", "1", "--chunk-rows", "2", "--out", "@out.npy"});
  const pid_t pid = spawn(job);
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 6000 && rows_recorded("out.npy") < 4; ++i) {  // at most a minute
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(rows_recorded("out.npy"), 4);
  overwrite(path("out.npy.partial"), data_offset_of(path("out.npy.partial")) + 16,
            std::string("\xde\xad\xbe\xef", 4));
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const std::string err = read_file(path("../io/stderr"));  // spawn()'s
  EXPECT_NE(err.find("rows 0 to 1 no longer match their checksum"), std::string::npos) << err;
  EXPECT_NE(err.find("nothing was published"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(path("out.npy")));
  ASSERT_TRUE(fs::exists(path("out.npy.partial")));

  const RunResult r = run(plus(kLongJob, {"--chunk-rows", "64", "--out", "@out.npy", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("298 rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("out.npy")) == one_process(kLongJob, "one.npy"));
}

TEST_F(ScaleOut, APartialFileThatIsALinkIsRefusedAndNotWrittenThrough) {
  const Args job = leave_rows_0_to_7_done();
  const std::string partial = read_file(path("out.npy.partial"));
  fs::rename(path("out.npy.partial"), path("other.npy"));

  // A symbolic link to another file of the same size...
  fs::create_symlink(path("other.npy"), path("out.npy.partial"));
  RunResult r = run(plus(job, {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot write " + path("out.npy.partial") +
                       ": it is a symbolic link, not the file written by rows"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(read_file(path("other.npy")) == partial) << "written through the link";
  fs::remove(path("out.npy.partial"));

  // ...and a hard link, a second name of the other file.
  fs::create_hard_link(path("other.npy"), path("out.npy.partial"));
  r = run(plus(job, {"--resume"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("it has 2 names (a hard link)"), std::string::npos) << r.err;
  EXPECT_TRUE(read_file(path("other.npy")) == partial) << "written through the hard link";
  EXPECT_FALSE(fs::exists(path("out.npy")));
}

TEST_F(ScaleOut, AOneBatchRunDoesNotWriteOverAnUnfinishedChunkedRun) {
  leave_rows_0_to_7_done();
  const std::string partial = read_file(path("out.npy.partial"));
  const std::string manifest_text = read_file(path("out.npy.manifest"));
  const RunResult r = run(plus(kSample, {"--initial", "@init.npy", "--out", "@out.npy"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path("out.npy") + ": an unfinished chunked run left " +
                       path("out.npy.partial") + " and " + path("out.npy.manifest")),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(path("out.npy")));
  EXPECT_TRUE(read_file(path("out.npy.partial")) == partial);
  EXPECT_EQ(read_file(path("out.npy.manifest")), manifest_text);
}

TEST_F(ScaleOut, AnOutputLockedByAnotherRunIsRefusedAtOnceTouchingNothing) {
  const int fd = hold_lock("out.npy");
  ASSERT_GE(fd, 0);
  const RunResult r =
      run(plus(kSample, {"--shape", "6,3", "--chunk-rows", "2", "--out", "@out.npy"}), 60);
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, refused_by_lock("out.npy"));
  EXPECT_EQ(listing(), (std::vector<std::string>{"out.npy.lock"}));
}

// Two runs started at once on one output: the lock lets exactly one of them
// write, and the other changes nothing; tried many times, since the order
// in which they reach the files differs from try to try.
TEST_F(ScaleOut, TwoRunsOnOneOutputNeverLoseTheWork) {
  const Args job{"sample", "--mean",   "0.5",       "--std",   "0.3",      "--shape",
                 "96,1024", "--steps", "300",       "--beta-end", "0.05",  "--seed",
                 "3",      "--backend", "cpu",      "--threads", "1"};
  const std::string expected = one_process(job, "one.npy");
  // Both wait for the file "go" (polled every 10 ms), so that they start
  // within moments of each other, well inside a run's half second.
  std::string both;
  for (const char* name : {"a", "b"}) {
    std::string command = "while [ ! -e " + quoted_arg("@go") + " ]; do sleep 0.01; done; " +
                          shell_quote(DDPM_CLI_PATH);
    for (const std::string& arg : plus(job, {"--chunk-rows", "8", "--out", "@out.npy"})) {
      command += " " + quoted_arg(arg);
    }
    both += "(" + command + " >" + quoted_arg(std::string("@") + name + ".out") + " 2>" +
            quoted_arg(std::string("@") + name + ".err") + "; echo $? >" +
            quoted_arg(std::string("@") + name + ".status") + ") & ";
  }
  for (int attempt = 0; attempt < 12; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    fs::remove(path("out.npy"));
    fs::remove(path("go"));
    ASSERT_EQ(run_shell(both + "sleep 0.2; touch " + quoted_arg("@go") + "; wait").exit_code, 0);
    const std::string status_a = read_file(path("a.status")), status_b = read_file(path("b.status"));
    ASSERT_TRUE((status_a == "0\n" && status_b == "1\n") || (status_a == "1\n" && status_b == "0\n"))
        << "exit statuses " << status_a << " and " << status_b << "; a: " << read_file(path("a.err"))
        << " b: " << read_file(path("b.err"));
    const std::string refused = status_a == "1\n" ? "a" : "b";
    const std::string err = read_file(path(refused + ".err"));
    EXPECT_EQ(count_lines(err), 1) << err;
    EXPECT_NE(err.find(": another run is writing it (process "), std::string::npos) << err;
    EXPECT_NE(err.find(" holds " + path("out.npy.lock") + ")"), std::string::npos) << err;
    EXPECT_TRUE(read_file(path("out.npy")) == expected) << "the output is not a lone run's";
    for (const char* leftover : {"out.npy.partial", "out.npy.manifest", "out.npy.lock"}) {
      EXPECT_FALSE(fs::exists(path(leftover))) << leftover;
    }
  }
}

TEST_F(ScaleOut, AOneBatchRunOnAnOutputAChunkedRunIsWritingIsRefusedAtOnce) {
  // A chunked run in progress: its files, and its lock held (as a running
  // ddpm holds it).
  leave_rows_0_to_7_done();
  const std::string partial = read_file(path("out.npy.partial"));
  const std::string manifest_text = read_file(path("out.npy.manifest"));
  const int fd = hold_lock("out.npy");
  ASSERT_GE(fd, 0);
  const std::vector<std::string> before = listing();
  RunResult r = run(plus(kSample, {"--initial", "@init.npy", "--out", "@out.npy"}), 60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  // One line, naming the lock; no advice to delete a live run's files.
  EXPECT_EQ(r.err, refused_by_lock("out.npy"));
  EXPECT_EQ(listing(), before);
  EXPECT_TRUE(read_file(path("out.npy.partial")) == partial);
  EXPECT_EQ(read_file(path("out.npy.manifest")), manifest_text);
  EXPECT_EQ(read_file(path("out.npy.lock")), "process 4242 on elsewhere\n");
  ::close(fd);

  // The run gone (its lock file left behind, held by no one): the leftovers
  // are refused as an unfinished run's, as before.
  r = run(plus(kSample, {"--initial", "@init.npy", "--out", "@out.npy"}), 60);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path("out.npy") + ": an unfinished chunked run left "), std::string::npos)
      << r.err;
  EXPECT_EQ(listing(), before);
}

TEST_F(ScaleOut, ResumeKnowsTheOutputByTheFileNotByHowItIsWritten) {
  write_initial("good.npy", false);
  const std::string expected = one_process(plus(kSample, {"--initial", "@good.npy"}), "one.npy");
  const auto in = [&](const std::string& directory, const Args& args) {
    std::string command = "cd " + shell_quote(directory) + " && " + shell_quote(DDPM_CLI_PATH);
    for (const std::string& arg : args) command += " " + quoted_arg(arg);
    return run_shell(command);
  };
  const std::string work = path(""), io = (base_ / "io").string();
  struct Case {
    std::string started_in, started_as, resumed_in, resumed_as;
  };
  for (const Case& c : {Case{work, "big.npy", work, "./big.npy"},
                        Case{work, "big.npy", work, path("big.npy")},
                        Case{work, "./big.npy", io, "../work/big.npy"},
                        Case{io, path("big.npy"), work, "big.npy"}}) {
    SCOPED_TRACE(c.started_as + " resumed as " + c.resumed_as);
    fs::remove(path("big.npy"));
    // Rows 0 to 7 done, then a NaN in row 10 stops the run.
    write_initial("init.npy", true);
    const Args job = plus(kSample, {"--initial", "@init.npy", "--chunk-rows", "4"});
    RunResult r = in(c.started_in, plus(job, {"--out", c.started_as}));
    ASSERT_EQ(r.exit_code, 1) << r.err;
    ASSERT_EQ(chunks_done("big.npy"), nlohmann::json::parse("[[0, 4], [4, 8]]"));
    write_initial("init.npy", false);
    r = in(c.resumed_in, plus(job, {"--out", c.resumed_as, "--resume"}));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("8 rows resumed"), std::string::npos) << r.out;
    EXPECT_TRUE(read_file(path("big.npy")) == expected);
    EXPECT_EQ(listing(),
              (std::vector<std::string>{"big.npy", "good.npy", "init.npy", "one.npy"}));
  }
}

TEST_F(ScaleOut, ADamagedManifestSaysToDeleteBothFilesAndRunWithoutResume) {
  const Args job = leave_rows_0_to_7_done();
  const std::string expected = one_process(plus(kSample, {"--initial", "@init.npy"}), "one.npy");
  const std::string advice = "; delete " + path("out.npy.partial") + " and " +
                             path("out.npy.manifest") +
                             ", then run the command again without --resume\n";
  for (const char* damaged : {"{\"ddpm_manifest\": 2, \"options\": [", "not json at all",
                              "{\"ddpm_manifest\": 2}"}) {
    SCOPED_TRACE(damaged);
    test::write_bytes(path("out.npy.manifest"), damaged);
    const RunResult r = run(plus(job, {"--resume"}));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("ddpm: error: " + path("out.npy.manifest") +
                              ": not a manifest this ddpm wrote (",
                          0),
              0u)
        << r.err;
    ASSERT_GE(r.err.size(), advice.size());
    EXPECT_EQ(r.err.substr(r.err.size() - advice.size()), advice) << r.err;
    EXPECT_FALSE(fs::exists(path("out.npy")));
  }
  // The advice taken, the job runs.
  fs::remove(path("out.npy.partial"));
  fs::remove(path("out.npy.manifest"));
  const RunResult r = run(job);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(path("out.npy")) == expected);
}

class ChunkedSignals : public ScaleOut, public ::testing::WithParamInterface<int> {};

TEST_P(ChunkedSignals, AStoppedRunSaysHowFarItGotAndResumeFinishesBitIdentical) {
  const pid_t pid = spawn(plus(kLongJob, {"--threads", "1", "--chunk-rows", "2",
                                          "--progress-interval", "1000", "--out", "@out.npy"}));
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 6000 && rows_recorded("out.npy") == 0; ++i) {  // at most a minute
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(::kill(pid, GetParam()), 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  // It ends as the signal says (as every signalled run does).
  ASSERT_TRUE(WIFSIGNALED(status)) << "exit status " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), GetParam());
  const std::int64_t recorded = rows_recorded("out.npy");
  ASSERT_GT(recorded, 0);
  ASSERT_LT(recorded, 300) << "the run finished before it was stopped";

  // One line: the chunks and rows the manifest holds, and what to do.
  const std::string err = read_file(base_ / "io" / "stderr");
  std::smatch said;
  ASSERT_TRUE(std::regex_match(err, said,
                               std::regex("ddpm: stopped after ([0-9]+) of 150 chunks \\(([0-9]+) of "
                                          "300 rows done\\); rerun the same command with --resume "
                                          "to continue\n")))
      << err;
  EXPECT_EQ(std::stoll(said[2].str()), recorded) << err;
  EXPECT_EQ(std::stoll(said[1].str()) * 2, recorded) << err;

  const RunResult r = run(plus(kLongJob, {"--chunk-rows", "64", "--out", "@out.npy", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(recorded) + " rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("out.npy")) == one_process(kLongJob, "one.npy"));
  EXPECT_EQ(listing(), (std::vector<std::string>{"one.npy", "out.npy"}));
}

INSTANTIATE_TEST_SUITE_P(Signals, ChunkedSignals, ::testing::Values(SIGINT, SIGTERM),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

// ---------------------------------------------------------------------------
// Several processes under mpirun.

TEST_F(ScaleOut, TwoAndThreeRanksEqualOneProcessForEveryRuleAndSplit) {
  skip_without_mpi();
  struct Case {
    const char* sampler;
    const char* shape;
    const char* chunk;  // "" for the automatic chunk size
  };
  for (const Case c : {Case{"ddpm", "10,17", "3"}, Case{"dpmpp_2m_sde", "11,17", "4"},
                       Case{"euler_ancestral", "2,5", "1"}, Case{"ddim", "7,3", ""}}) {
    const Args job = plus(kSample, {"--shape", c.shape, "--sampler", c.sampler, "--inference-steps",
                                    "10", "--first-sample", "3"});
    const std::string expected = one_process(job, "one.npy");
    for (const int ranks : {2, 3}) {
      Args args = plus(job, {"--out", "@m.npy"});
      if (*c.chunk) args = plus(args, {"--chunk-rows", c.chunk});
      const RunResult r = run_ranks(ranks, args);
      ASSERT_EQ(r.exit_code, 0) << c.sampler << " " << ranks << " ranks: " << r.err;
      // Rank 0 alone prints the summary.
      EXPECT_EQ(occurrences(r.out, "wrote "), 1) << r.out;
      EXPECT_NE(r.out.find(std::to_string(ranks) + " ranks"), std::string::npos) << r.out;
      EXPECT_TRUE(read_file(path("m.npy")) == expected)
          << c.sampler << " " << c.shape << " on " << ranks << " ranks differs from one process";
      EXPECT_EQ(listing(), (std::vector<std::string>{"m.npy", "one.npy"}));
    }
  }
}

TEST_F(ScaleOut, ThreeRanksNoiseAndMixAsOneProcess) {
  skip_without_mpi();
  test::write_bytes(path("gmm.json"),
                    R"({"weights": [0.4, 0.6], "means": [[0, 1], [-1, 0]], "stds": [0.3, 0.5]})");
  const Args gmm{"sample", "--predictor", "gmm", "--gmm",      "@gmm.json", "--shape",
                 "8,2",    "--steps",     "30",  "--beta-end", "0.3",       "--seed",
                 "2",      "--backend",   "cpu", "--sampler",  "dpmpp_2m",  "--inference-steps",
                 "8"};
  const std::string expected = one_process(gmm, "one.npy");
  ASSERT_EQ(run_ranks(3, plus(gmm, {"--out", "@m.npy", "--chunk-rows", "2"})).exit_code, 0);
  EXPECT_TRUE(read_file(path("m.npy")) == expected);

  write_array("x0.npy", {7, 4}, values(28, 3));
  const Args forward{"forward", "--x0", "@x0.npy", "--t", "300", "--seed", "4", "--backend", "cpu"};
  ASSERT_EQ(run(plus(forward, {"--out", "@a.npy", "--noise-out", "@an.npy"})).exit_code, 0);
  const RunResult r = run_ranks(3, plus(forward, {"--out", "@b.npy", "--noise-out", "@bn.npy"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(read_file(path("b.npy")) == read_file(path("a.npy")));
  EXPECT_TRUE(read_file(path("bn.npy")) == read_file(path("an.npy")));
}

TEST_F(ScaleOut, RankZeroPrintsProgressForEveryRank) {
  skip_without_mpi();
  // 12 rows on 2 ranks in chunks of 2: 3 rounds, a line after each.
  const RunResult r = run_ranks(2, plus(kSample, {"--shape", "12,4", "--chunk-rows", "2",
                                                  "--progress-interval", "0", "--out", "@m.npy"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(occurrences(r.err, "ddpm: sampling: "), 3) << r.err;
  EXPECT_NE(r.err.find("ddpm: sampling: 4 of 12 rows (33%)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ddpm: sampling: 12 of 12 rows (100%)"), std::string::npos) << r.err;
}

TEST_F(ScaleOut, RanksStartedWithOtherOptionsAllStop) {
  skip_without_mpi();
  const Args job = plus(kSample, {"--shape", "6,3", "--out", "@m.npy"});
  const RunResult r = run_blocks(
      {{"", plus(job, {"--first-sample", "0"})}, {"", plus(job, {"--first-sample", "1"})}});
  EXPECT_NE(r.exit_code, 0);
  // Every rank prints rank 1's message and exits with its (usage) status.
  EXPECT_EQ(occurrences(r.err,
                        "ddpm: error: rank 1 of 2: started with other options than rank 0 "
                        "(here: --first-sample 1; rank 0: --first-sample 0): every rank "
                        "must run the same command\n"),
            2)
      << r.err;
  EXPECT_TRUE(listing().empty());
}

TEST_F(ScaleOut, AnOutputOneRankCannotWriteStopsEveryRank) {
  skip_without_mpi();
  // The ranks run in two directories: rank 1's x.npy is a directory.
  fs::create_directories(path("a"));
  fs::create_directories(path("b/x.npy"));
  const Args job = plus(kSample, {"--shape", "6,3", "--out", "x.npy"});
  const RunResult r = run_blocks(
      {{"--wdir " + shell_quote(path("a")), job}, {"--wdir " + shell_quote(path("b")), job}});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(occurrences(r.err, "ddpm: error: rank 1 of 2: cannot write x.npy: Is a directory\n"), 2)
      << r.err;
  EXPECT_TRUE(ScratchDir::listing_of(path("a")).empty());

  // Rank 1 can write there but does not see rank 0's directory (as on
  // machines without a shared file system): it says so, rank 0 cleans up.
  fs::remove_all(path("b/x.npy"));
  const RunResult unshared = run_blocks(
      {{"--wdir " + shell_quote(path("a")), job}, {"--wdir " + shell_quote(path("b")), job}});
  EXPECT_NE(unshared.exit_code, 0);
  EXPECT_EQ(occurrences(unshared.err,
                        "ddpm: error: rank 1 of 2: cannot write x.npy.partial: No "
                        "such file or directory (rank 0 created it: every rank must "
                        "see the output's directory"),
            2)
      << unshared.err;
  EXPECT_TRUE(ScratchDir::listing_of(path("a")).empty());
  EXPECT_TRUE(ScratchDir::listing_of(path("b")).empty());
}

TEST_F(ScaleOut, RanksSplitANetworkJobAtItsBlocksAndEqualOneProcess) {
  skip_without_mpi();
  const std::string expected = one_process(kModelJob, "one.npy");
  for (const int ranks : {2, 3}) {
    for (const char* chunk : {"", "70"}) {
      Args args = plus(kModelJob, {"--out", "@m.npy"});
      if (*chunk) args = plus(args, {"--chunk-rows", chunk});
      const RunResult r = run_ranks(ranks, args);
      ASSERT_EQ(r.exit_code, 0) << ranks << " ranks: " << r.err;
      EXPECT_TRUE(read_file(path("m.npy")) == expected)
          << ranks << " ranks, --chunk-rows '" << chunk << "' differ from one process";
    }
  }
}

TEST_F(ScaleOut, AFailingRankStopsEveryRankAndAResumeOnOtherRanksFinishes) {
  skip_without_mpi();
  write_initial("good.npy", false);
  write_initial("init.npy", true);
  const Args job = plus(kSample, {"--initial", "@init.npy", "--out", "@m.npy"});
  const std::string expected = one_process(plus(kSample, {"--initial", "@good.npy"}), "one.npy");
  // Rows 0-9 on rank 0, 10-19 on rank 1, whose first chunk has the NaN;
  // rank 0's first chunk [0, 4) is done in the same round and kept.
  RunResult r = run_ranks(2, plus(job, {"--chunk-rows", "4"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(occurrences(r.err,
                        "ddpm: error: rank 1 of 2: rows 10 to 13: initial x_T contains a "
                        "non-finite value"),
            2)
      << r.err;
  EXPECT_EQ(occurrences(r.err, "(4 of 20 rows are done in "), 2) << r.err;
  EXPECT_EQ(chunks_done("m.npy"), nlohmann::json::parse("[[0, 4]]"));
  EXPECT_FALSE(fs::exists(path("m.npy")));

  write_initial("init.npy", false);
  r = run_ranks(3, plus(job, {"--chunk-rows", "3", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("3 ranks, chunks of 3 rows, 4 rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("m.npy")) == expected);
  EXPECT_EQ(listing(), (std::vector<std::string>{"good.npy", "init.npy", "m.npy", "one.npy"}));
}

TEST_F(ScaleOut, ResumeAfterStoppingTheJobIsBitIdentical) {
  skip_without_mpi();
  std::vector<std::string> words{"/usr/bin/env", "ASAN_OPTIONS=" + rank_asan_options()};
  std::istringstream launcher(DDPM_MPIEXEC);  // the launcher's flags have no quotes
  for (std::string word; launcher >> word;) words.push_back(word);
  words = plus(words, {"-n", "2", DDPM_CLI_PATH});
  const pid_t pid =
      spawn_program(plus(words, plus(kLongJob, {"--chunk-rows", "2", "--out", "@m.npy"})));
  ASSERT_GT(pid, 0);
  for (int i = 0; i < 6000 && rows_recorded("m.npy") == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // As a batch scheduler stops a job (Slurm's scancel): SIGTERM to every
  // rank and to the launcher. mpirun alone forwards it only after about a
  // second, in which a fast machine finishes the whole job.
  for (const pid_t rank : children_of(pid)) ::kill(rank, SIGTERM);
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_NE(status, 0);
  const std::int64_t recorded = rows_recorded("m.npy");
  ASSERT_GT(recorded, 0);
  ASSERT_LT(recorded, 300) << "the job finished before it was stopped";
  ASSERT_FALSE(fs::exists(path("m.npy")));

  const RunResult r =
      run_ranks(2, plus(kLongJob, {"--chunk-rows", "50", "--out", "@m.npy", "--resume"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(std::to_string(recorded) + " rows resumed"), std::string::npos) << r.out;
  EXPECT_TRUE(read_file(path("m.npy")) == one_process(kLongJob, "one.npy"));
  EXPECT_EQ(listing_without_temporaries(), (std::vector<std::string>{"m.npy", "one.npy"}));
}

}  // namespace
}  // namespace ddpm::test
