// Which loads and stores become 128-bit accesses: aligned runs of four in one block with no
// intervening write (or read, for stores) of the same memory.
#include <gtest/gtest.h>

#include "lathe/vector_access.h"

namespace lathe {
namespace {

struct KernelBuilder {
  Kernel k;
  Expr g;
  KernelBuilder() {
    k.var_names = {"g"};
    g = expr_var(0, 0, 1023);
    Inst r{IOp::Range};
    r.var = 0;
    r.extent = 1024;
    r.global = true;
    k.insts.push_back(r);
  }
  int load(int buffer, int64_t scale, int64_t offset) {
    Inst in{IOp::Load};
    in.buffer = buffer;
    in.index = expr_add(expr_mul(g, scale), offset);
    k.insts.push_back(in);
    return static_cast<int>(k.insts.size()) - 1;
  }
  void store(int buffer, int64_t scale, int64_t offset, int value) {
    Inst in{IOp::Store};
    in.buffer = buffer;
    in.index = expr_add(expr_mul(g, scale), offset);
    in.src = {value};
    k.insts.push_back(in);
  }
};

TEST(VectorAccess, AlignedRunsOfFourLoadsAndStores) {
  KernelBuilder b;
  std::vector<int> v;
  for (int lane : {2, 0, 3, 1}) v.push_back(b.load(1, 4, lane));  // any order within the block
  for (int lane = 0; lane < 4; ++lane) b.store(0, 4, lane, v[lane]);
  VectorPlan plan = plan_vector_access(b.k);
  ASSERT_EQ(plan.runs.size(), 2u);
  EXPECT_EQ(plan.runs[0].at, 1);                                // loads: at the first lane
  EXPECT_EQ(plan.runs[1].at, static_cast<int>(b.k.insts.size()) - 1);  // stores: at the last
  EXPECT_EQ(plan.runs[0].lanes[0], 2);                          // lanes in address order
}

TEST(VectorAccess, MisalignedOrIncompleteRunsStayScalar) {
  KernelBuilder b;
  for (int lane = 1; lane < 5; ++lane) b.load(1, 4, lane);  // starts at 4g+1
  for (int lane = 0; lane < 3; ++lane) b.load(2, 4, lane);  // only three lanes
  for (int lane = 0; lane < 4; ++lane) b.load(3, 6, lane);  // 6g is not a multiple of four
  EXPECT_TRUE(plan_vector_access(b.k).runs.empty());
}

TEST(VectorAccess, AnInterveningWriteOfTheSameMemoryKeepsLoadsScalar) {
  KernelBuilder b;
  int first = b.load(0, 4, 0);
  b.store(0, 4, 1, first);  // in-place update between the lanes
  for (int lane = 1; lane < 4; ++lane) b.load(0, 4, lane);
  VectorPlan plan = plan_vector_access(b.k);
  for (auto& run : plan.runs) EXPECT_NE(b.k.insts[run.lanes[0]].op, IOp::Load);
}

TEST(VectorAccess, CommonFactorsKeepIndicesVisiblyAligned) {
  Expr c = expr_var(0, 0, 1023);
  // (4c) % 16 == 4 * (c % 4) and (4c) / 16 == c / 4
  EXPECT_TRUE(expr_divisible(expr_mod(expr_mul(c, 4), 16), 4));
  EXPECT_EQ(expr_div(expr_mul(c, 4), 16)->key, expr_div(c, 4)->key);
}

}  // namespace
}  // namespace lathe
