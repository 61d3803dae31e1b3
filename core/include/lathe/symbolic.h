// Integer index expressions over loop variables, kept in a canonical affine form so that
// movement ops (reshape, permute, pad, ...) compose into simple address arithmetic.
//
// An expression is a sum  c + k1*a1 + k2*a2 + ...  of atoms (a loop variable, a floor
// division or a modulo of another sum by a constant). Every atom knows its range, which lets
// (i*N + j) / N fold to i when 0 <= j < N. Expressions are immutable and shared.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lathe {

struct ExprNode;
using Expr = std::shared_ptr<const ExprNode>;

struct ExprNode {
  enum class Kind : uint8_t { Const, Var, Sum, Div, Mod };
  Kind kind;
  int64_t value = 0;                      // Const: value; Var: id; Div/Mod: divisor; Sum: constant
  std::vector<std::pair<int64_t, Expr>> terms;  // Sum: (coefficient, atom); Div/Mod: one term (1, sum)
  int64_t lo = 0, hi = 0;                 // inclusive bounds
  std::string key;                        // canonical text; equal keys mean equal expressions
};

Expr expr_const(int64_t value);
Expr expr_var(int id, int64_t lo, int64_t hi);  // hi inclusive
Expr expr_add(const Expr& a, const Expr& b);
Expr expr_add(const Expr& a, int64_t b);
Expr expr_mul(const Expr& a, int64_t k);
Expr expr_div(const Expr& a, int64_t d);  // floor division by a positive constant
Expr expr_mod(const Expr& a, int64_t d);  // floor modulo by a positive constant
// Replaces variable `id` by the constant `value` and simplifies again.
Expr expr_substitute(const Expr& e, int id, int64_t value);
bool expr_is_const(const Expr& e, int64_t* value = nullptr);
// Coefficient of a variable when the expression is affine in it at top level (0 if absent, -1 if not affine).
int64_t expr_coefficient(const Expr& e, int var_id);
bool expr_depends_on(const Expr& e, int var_id);
// True when e is a multiple of d for every value of its variables (all coefficients and the constant are).
bool expr_divisible(const Expr& e, int64_t d);

// lo <= e < hi, as produced by PAD. Simplified away when the bounds of `e` make it always true.
struct IndexBound {
  Expr e;
  int64_t lo, hi;
};
// Appends `b` unless it always holds; returns false when it can never hold.
bool add_bound(std::vector<IndexBound>& bounds, IndexBound b);
std::vector<IndexBound> substitute_bounds(const std::vector<IndexBound>& bounds, int id, int64_t value, bool* never);

// Renders as C: variables are named by `var_name(id)`.
std::string render_expr(const Expr& e, const std::vector<std::string>& var_names);

}  // namespace lathe
