// The constant-memory arena's allocator (host code, no device needed): the
// capacities the README promises, first-fit reuse and alignment.
#include <gtest/gtest.h>

#include <vector>

#include "cuda/constant_arena.h"
#include "kernels/step_records.cuh"

namespace ddpm::detail::cuda {
namespace {

// A device index no test of the real engine uses, so arenas do not interfere.
constexpr int kDevice = 97;

int floats_for(int steps, bool clipped) { return steps * kernels::record_width(clipped); }

TEST(ConstantArena, OneScheduleFitsUpToTheDocumentedT) {
  EXPECT_TRUE(ConstantRegion::acquire(kDevice, floats_for(3072, false)).valid());
  EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(3073, false)).valid());
  EXPECT_TRUE(ConstantRegion::acquire(kDevice, floats_for(2194, true)).valid());
  EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(2195, true)).valid());
}

TEST(ConstantArena, ThreePlainOrTwoClippedSchedulesOfT1024ShareIt) {
  {
    std::vector<ConstantRegion> plain;
    for (int i = 0; i < 3; ++i) plain.push_back(ConstantRegion::acquire(kDevice, floats_for(1024, false)));
    for (const auto& r : plain) EXPECT_TRUE(r.valid());
    EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(1000, false)).valid()) << "a fourth";
  }
  std::vector<ConstantRegion> clipped;
  for (int i = 0; i < 2; ++i) clipped.push_back(ConstantRegion::acquire(kDevice, floats_for(1024, true)));
  for (const auto& r : clipped) EXPECT_TRUE(r.valid());
  EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(1000, true)).valid()) << "a third";
}

TEST(ConstantArena, RegionsAreAlignedDisjointAndReused) {
  ConstantRegion a = ConstantRegion::acquire(kDevice, 10);
  ConstantRegion b = ConstantRegion::acquire(kDevice, 100);
  ConstantRegion c = ConstantRegion::acquire(kDevice, 10);
  ASSERT_TRUE(a.valid() && b.valid() && c.valid());
  for (const ConstantRegion* r : {&a, &b, &c}) EXPECT_EQ(r->offset() % 64, 0) << "256-byte aligned";
  EXPECT_LT(a.offset(), b.offset());
  EXPECT_GE(b.offset(), a.offset() + 64);
  EXPECT_GE(c.offset(), b.offset() + 128);
  const int freed = b.offset();
  b.release();
  EXPECT_EQ(ConstantRegion::acquire(kDevice, 100).offset(), freed) << "first fit reuses the hole";
  EXPECT_EQ(constant_arena_stats(kDevice).regions, 2);
}

TEST(ConstantArena, MovedRegionIsReleasedOnce) {
  {
    ConstantRegion a = ConstantRegion::acquire(kDevice, 64);
    ConstantRegion b = std::move(a);
    EXPECT_FALSE(a.valid());
    EXPECT_TRUE(b.valid());
  }
  EXPECT_EQ(constant_arena_stats(kDevice).regions, 0);
}

}  // namespace
}  // namespace ddpm::detail::cuda
