// The constant-memory arena's allocator (host code, no device needed): the
// capacities the README promises, first-fit reuse and alignment.
#include <gtest/gtest.h>

#include <vector>

#include "backends/cuda/constant_arena.h"
#include "kernels/step_rule.cuh"

namespace ddpm::detail::cuda {
namespace {

// A device index no test of the real engine uses, so arenas do not interfere.
constexpr int kDevice = 97;

// Floats of a plan of `steps` timesteps; `full`: with x0 processing.
int floats_for(int steps, bool full) { return steps * kernels::record_width(full); }

TEST(ConstantArena, OnePlanFitsUpToTheDocumentedStepCount) {
  EXPECT_TRUE(ConstantRegion::acquire(kDevice, floats_for(1706, false)).valid());
  EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(1707, false)).valid());
  EXPECT_TRUE(ConstantRegion::acquire(kDevice, floats_for(1181, true)).valid());
  EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(1182, true)).valid());
}

TEST(ConstantArena, OnePlanOfAThousandStepsOrTwoOf850) {
  {
    std::vector<ConstantRegion> plain;
    for (int i = 0; i < 2; ++i) plain.push_back(ConstantRegion::acquire(kDevice, floats_for(850, false)));
    for (const auto& r : plain) EXPECT_TRUE(r.valid());
    EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(100, false)).valid()) << "a third";
  }
  std::vector<ConstantRegion> full;
  full.push_back(ConstantRegion::acquire(kDevice, floats_for(1000, true)));
  EXPECT_TRUE(full.front().valid());
  EXPECT_FALSE(ConstantRegion::acquire(kDevice, floats_for(200, true)).valid()) << "a second";
}

TEST(ConstantArena, RespacedPlansFitByTheDozen) {
  // 50 steps: 450 floats plain (512 after rounding to 64), 650 full (704).
  std::vector<ConstantRegion> regions;
  for (int i = 0; i < 12; ++i) regions.push_back(ConstantRegion::acquire(kDevice, floats_for(50, true)));
  for (int i = 0; i < 12; ++i) regions.push_back(ConstantRegion::acquire(kDevice, floats_for(50, false)));
  for (const auto& r : regions) EXPECT_TRUE(r.valid());
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
