// Linked into every test program: the program runs with TMPDIR pointing at a
// fresh directory of its own, and fails if anything is left there when its
// tests end (tests clean up after themselves, also when they pass). ctest
// runs each case as its own process, so each case is checked alone, and the
// ddpm processes a test starts inherit the directory and are checked with it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

namespace {

class TmpdirMustStayEmpty : public ::testing::Environment {
 public:
  void SetUp() override {
    std::string pattern = (std::filesystem::path(::testing::TempDir()) / "ddpm_tmpdir_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      FAIL() << "cannot create the test program's TMPDIR from " << pattern;
    }
    dir_ = pattern;
    saved_tmpdir_ = read_env("TMPDIR");
    saved_test_tmpdir_ = read_env("TEST_TMPDIR");
    // gtest's TempDir() reads TEST_TMPDIR first; other programs read TMPDIR.
    ::setenv("TMPDIR", dir_.c_str(), 1);
    ::setenv("TEST_TMPDIR", dir_.c_str(), 1);
  }

  void TearDown() override {
    if (dir_.empty()) return;
    restore_env("TMPDIR", saved_tmpdir_);
    restore_env("TEST_TMPDIR", saved_test_tmpdir_);
    std::string left;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, error)) {
      left += " " + entry.path().filename().string();
    }
    EXPECT_TRUE(left.empty()) << "the tests left files in their TMPDIR " << dir_ << ":" << left;
    std::filesystem::remove_all(dir_, error);
  }

 private:
  static std::optional<std::string> read_env(const char* name) {
    const char* value = ::getenv(name);
    return value == nullptr ? std::nullopt : std::optional<std::string>(value);
  }
  static void restore_env(const char* name, const std::optional<std::string>& value) {
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }

  std::string dir_;
  std::optional<std::string> saved_tmpdir_, saved_test_tmpdir_;
};

// Registered before main runs; gtest owns the environment.
[[maybe_unused]] ::testing::Environment* const tmpdir_guard =
    ::testing::AddGlobalTestEnvironment(new TmpdirMustStayEmpty);

}  // namespace
