// Index expressions: the simplifications that make movement ops cheap.
#include <gtest/gtest.h>

#include "lathe/symbolic.h"

namespace lathe {
namespace {

std::string r(const Expr& e) { return render_expr(e, {"i", "j", "k"}); }

TEST(Symbolic, ReshapeRoundTripFoldsAway) {
  Expr i = expr_var(0, 0, 7), j = expr_var(1, 0, 4);
  Expr flat = expr_add(expr_mul(i, 5), j);  // i*5 + j
  EXPECT_EQ(r(expr_div(flat, 5)), "i");
  EXPECT_EQ(r(expr_mod(flat, 5)), "j");
  EXPECT_EQ(r(expr_mod(expr_div(flat, 5), 8)), "i");
}

TEST(Symbolic, SplitIndicesRejoin) {
  Expr g = expr_var(0, 0, 999);
  Expr rows = expr_div(g, 40), cols = expr_mod(g, 40);
  EXPECT_EQ(r(expr_add(expr_mul(rows, 40), cols)), "i");
  EXPECT_EQ(r(expr_add(expr_mul(rows, 80), expr_mul(cols, 2))), "(i*2)");
  EXPECT_EQ(r(expr_add(expr_mul(rows, 41), cols)), "((i%40)+(i/40)*41)");  // not a rejoin
}

TEST(Symbolic, ConstantsAndNesting) {
  Expr i = expr_var(0, 0, 99);
  EXPECT_TRUE(expr_is_const(expr_add(expr_mul(i, 0), 3)));
  EXPECT_EQ(r(expr_div(expr_div(i, 2), 5)), "(i/10)");
  EXPECT_EQ(r(expr_mod(expr_mod(i, 12), 4)), "(i%4)");
  EXPECT_EQ(r(expr_div(expr_add(expr_mul(i, 4), 2), 4)), "i");
  Expr s = expr_substitute(expr_add(expr_mul(i, 3), expr_var(1, 0, 9)), 0, 2);
  EXPECT_EQ(s->lo, 6);
  EXPECT_EQ(s->hi, 15);
}

// A flattened [heads, rows, cols] index with the row moved by a register offset: the head is
// still the block index of the group alone, whatever the offset; remainders split the same way.
TEST(Symbolic, SmallTermsBelowADividingFactorDropOutOfQuotients) {
  Expr g = expr_var(0, 0, 511), j = expr_var(1, 0, 63);  // g: 4-row block over 2 heads x 1024 rows
  for (int u = 0; u < 4; ++u) {
    Expr flat = expr_add(expr_add(expr_mul(g, 4096), u * 1024), j);  // h*T*T + (4g+u)*T + j, T = 1024
    EXPECT_EQ(r(expr_div(flat, 1048576)), "(i/256)") << u;
    EXPECT_EQ(r(expr_mod(flat, 1048576)), r(expr_add(expr_add(expr_mul(expr_mod(g, 256), 4096), u * 1024), j))) << u;
  }
  // Exhaustively against integer arithmetic, with negative coefficients and constants too.
  Expr a = expr_var(0, -3, 5), b = expr_var(1, 0, 5);
  for (int64_t ca : {6, -6, 12}) {
    for (int64_t c0 : {0, 1, 5, -7}) {
      Expr x = expr_add(expr_add(expr_mul(a, ca), b), c0);
      for (int64_t d : {6, 12, 18}) {
        Expr q = expr_div(x, d), m = expr_mod(x, d);
        for (int64_t av = -3; av <= 5; ++av)
          for (int64_t bv = 0; bv <= 5; ++bv) {
            int64_t v = av * ca + bv + c0, fq = v >= 0 ? v / d : -((-v + d - 1) / d);
            int64_t qv = 0, mv = 0;
            ASSERT_TRUE(expr_is_const(expr_substitute(expr_substitute(q, 0, av), 1, bv), &qv));
            ASSERT_TRUE(expr_is_const(expr_substitute(expr_substitute(m, 0, av), 1, bv), &mv));
            ASSERT_EQ(qv, fq) << r(x) << " / " << d << " at " << av << ", " << bv;
            ASSERT_EQ(mv, v - fq * d) << r(x) << " % " << d << " at " << av << ", " << bv;
          }
      }
    }
  }
}

TEST(Symbolic, BoundsDropWhenAlwaysTrueAndFailWhenNever) {
  std::vector<IndexBound> b;
  Expr i = expr_var(0, 0, 9);
  EXPECT_TRUE(add_bound(b, {i, 0, 10}));
  EXPECT_TRUE(b.empty());
  EXPECT_TRUE(add_bound(b, {expr_add(i, -2), 0, 10}));
  EXPECT_EQ(b.size(), 1u);
  EXPECT_FALSE(add_bound(b, {expr_add(i, 20), 0, 10}));
  EXPECT_EQ(expr_coefficient(expr_add(expr_mul(i, 7), expr_var(1, 0, 3)), 0), 7);
  EXPECT_EQ(expr_coefficient(expr_div(i, 2), 0), -1);
}

}  // namespace
}  // namespace lathe
