// Index expressions: construction, canonical affine form and simplification.
#include "lathe/symbolic.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

namespace lathe {
namespace {

using Kind = ExprNode::Kind;

int64_t floordiv(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }
int64_t floormod(int64_t a, int64_t d) { return a - floordiv(a, d) * d; }

Expr make_atom(Kind kind, int64_t divisor, Expr inner) {
  auto n = std::make_shared<ExprNode>();
  n->kind = kind;
  n->value = divisor;
  n->terms = {{1, inner}};
  if (kind == Kind::Div) {
    n->lo = floordiv(inner->lo, divisor);
    n->hi = floordiv(inner->hi, divisor);
    n->key = "(" + inner->key + ")/" + std::to_string(divisor);
  } else {
    n->lo = inner->lo >= 0 ? 0 : -(divisor - 1);
    n->hi = divisor - 1;
    n->key = "(" + inner->key + ")%" + std::to_string(divisor);
  }
  return n;
}

// The affine view of any expression: constant plus (coefficient, atom) terms.
struct Affine {
  int64_t c = 0;
  std::map<std::string, std::pair<int64_t, Expr>> terms;  // keyed by atom key, sorted for canonical form
};

Affine affine_of(const Expr& e) {
  Affine a;
  if (e->kind == Kind::Const) a.c = e->value;
  else if (e->kind == Kind::Sum) {
    a.c = e->value;
    for (auto& [k, atom] : e->terms) a.terms[atom->key] = {k, atom};
  } else a.terms[e->key] = {1, e};
  return a;
}

Affine affine_of(const Expr& e);

// k*d*(x/d) + k*(x%d) == k*x: folds the index a flattened loop splits back together.
bool fold_div_mod(Affine& a) {
  for (auto& [key, t] : a.terms) {
    const Expr& m = t.second;
    if (m->kind != Kind::Mod || t.first == 0) continue;
    const Expr& inner = m->terms[0].second;
    std::string div_key = "(" + inner->key + ")/" + std::to_string(m->value);
    auto it = a.terms.find(div_key);
    if (it == a.terms.end() || it->second.first != t.first * m->value) continue;
    int64_t k = t.first;
    a.terms.erase(it);
    a.terms.erase(key);
    Affine x = affine_of(inner);
    a.c += k * x.c;
    for (auto& [xk, xt] : x.terms) {
      auto [slot, fresh] = a.terms.try_emplace(xk, 0, xt.second);
      slot->second.first += k * xt.first;
    }
    return true;
  }
  return false;
}

Expr build(Affine a) {
  while (fold_div_mod(a)) {
  }
  std::vector<std::pair<int64_t, Expr>> terms;
  for (auto& [key, t] : a.terms)
    if (t.first != 0) terms.push_back(t);
  if (terms.empty()) return expr_const(a.c);
  if (terms.size() == 1 && a.c == 0 && terms[0].first == 1) return terms[0].second;
  auto n = std::make_shared<ExprNode>();
  n->kind = Kind::Sum;
  n->value = a.c;
  n->lo = n->hi = a.c;
  n->key = std::to_string(a.c);
  for (auto& [k, atom] : terms) {
    n->lo += k > 0 ? k * atom->lo : k * atom->hi;
    n->hi += k > 0 ? k * atom->hi : k * atom->lo;
    n->key += "+" + std::to_string(k) + "*" + atom->key;
  }
  n->terms = std::move(terms);
  return n;
}

}  // namespace

Expr expr_const(int64_t value) {
  auto n = std::make_shared<ExprNode>();
  n->kind = Kind::Const;
  n->value = n->lo = n->hi = value;
  n->key = std::to_string(value);
  return n;
}

Expr expr_var(int id, int64_t lo, int64_t hi) {
  if (lo == hi) return expr_const(lo);
  auto n = std::make_shared<ExprNode>();
  n->kind = Kind::Var;
  n->value = id;
  n->lo = lo;
  n->hi = hi;
  n->key = "v" + std::to_string(id);
  return n;
}

Expr expr_add(const Expr& a, const Expr& b) {
  Affine x = affine_of(a), y = affine_of(b);
  x.c += y.c;
  for (auto& [key, t] : y.terms) {
    auto it = x.terms.find(key);
    if (it == x.terms.end()) x.terms[key] = t;
    else it->second.first += t.first;
  }
  return build(x);
}

Expr expr_add(const Expr& a, int64_t b) { return b == 0 ? a : expr_add(a, expr_const(b)); }

Expr expr_mul(const Expr& a, int64_t k) {
  if (k == 1) return a;
  Affine x = affine_of(a);
  x.c *= k;
  for (auto& [key, t] : x.terms) t.first *= k;
  return build(x);
}

// The greatest common factor of d and every coefficient and the constant of e.
static int64_t common_factor(const Expr& e, int64_t d) {
  Affine x = affine_of(e);
  int64_t g = std::gcd(d, x.c);
  for (auto& [key, t] : x.terms) g = std::gcd(g, t.first);
  return g;
}

// (g*y) / (g*m) == y / m and (g*y) % (g*m) == g*(y % m): keeps aligned indices visibly aligned.
static Expr divide_exact(const Expr& e, int64_t g) {
  Affine x = affine_of(e);
  x.c /= g;
  for (auto& [key, t] : x.terms) t.first /= g;
  return build(x);
}

// x == c*y + s with c > 1 dividing d and 0 <= s < c: the terms whose coefficients share the
// factor c with d make y, the rest (smaller, and bounded below c) make s. Then x / d == y / (d/c)
// and x % d == c*(y % (d/c)) + s: a flattened index split back into its axes, e.g. the head of
// (h*T*T + i*T + j) with i + 1 in place of i, which then no longer differs from that of i.
struct Split {
  Expr y, s;
  int64_t c = 0;
};
static std::optional<Split> split_below(const Affine& x, int64_t d) {
  std::vector<std::pair<int64_t, Expr>> terms;
  for (auto& [key, t] : x.terms) terms.push_back(t);
  std::sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return std::abs(a.first) > std::abs(b.first); });
  for (size_t p = 1; p <= terms.size(); ++p) {
    int64_t c = d;
    for (size_t i = 0; i < p; ++i) c = std::gcd(c, terms[i].first);
    if (c <= 1) return std::nullopt;  // a larger set of terms shares no more
    Affine y, s;
    y.c = floordiv(x.c, c);
    s.c = floormod(x.c, c);
    for (size_t i = 0; i < terms.size(); ++i) {
      Affine& to = i < p ? y : s;
      to.terms[terms[i].second->key] = {i < p ? terms[i].first / c : terms[i].first, terms[i].second};
    }
    Expr se = build(s);
    if (se->lo >= 0 && se->hi < c) return Split{build(y), se, c};
  }
  return std::nullopt;
}

Expr expr_div(const Expr& a, int64_t d) {
  if (d == 1) return a;
  if (a->lo >= 0 && a->hi < d) return expr_const(0);
  if (floordiv(a->lo, d) == floordiv(a->hi, d)) return expr_const(floordiv(a->lo, d));
  if (int64_t g = common_factor(a, d); g > 1) return expr_div(divide_exact(a, g), d / g);
  Affine x = affine_of(a);
  // Pull out whole multiples of d: (d*q*t + r) / d == q*t + r / d.
  Affine quotient, rest;
  quotient.c = floordiv(x.c, d);
  rest.c = floormod(x.c, d);
  for (auto& [key, t] : x.terms) {
    if (t.first % d == 0) quotient.terms[key] = {t.first / d, t.second};
    else rest.terms[key] = t;
  }
  Expr r = build(rest);
  Expr q = build(quotient);
  if (rest.terms.empty()) return expr_add(q, floordiv(rest.c, d));
  if (floordiv(r->lo, d) == floordiv(r->hi, d)) return expr_add(q, floordiv(r->lo, d));
  // (x / a) / b == x / (a*b)
  if (r->kind == Kind::Div) return expr_add(q, expr_div(r->terms[0].second, r->value * d));
  if (auto sp = split_below(rest, d)) return expr_add(q, expr_div(sp->y, d / sp->c));
  return expr_add(q, make_atom(Kind::Div, d, r));
}

Expr expr_mod(const Expr& a, int64_t d) {
  if (d == 1) return expr_const(0);
  if (a->lo >= 0 && a->hi < d) return a;
  if (int64_t g = common_factor(a, d); g > 1) return expr_mul(expr_mod(divide_exact(a, g), d / g), g);
  Affine x = affine_of(a), rest;
  rest.c = floormod(x.c, d);
  for (auto& [key, t] : x.terms)
    if (t.first % d != 0) rest.terms[key] = {floormod(t.first, d), t.second};
  Expr r = build(rest);
  if (r->lo >= 0 && r->hi < d) return r;
  if (floordiv(r->lo, d) == floordiv(r->hi, d)) return expr_add(r, -floordiv(r->lo, d) * d);
  // (x % a) % b == x % b when b divides a
  if (r->kind == Kind::Mod && r->value % d == 0) return expr_mod(r->terms[0].second, d);
  if (auto sp = split_below(rest, d)) return expr_add(expr_mul(expr_mod(sp->y, d / sp->c), sp->c), sp->s);
  return make_atom(Kind::Mod, d, r);
}

Expr expr_substitute(const Expr& e, int id, int64_t value) {
  switch (e->kind) {
    case Kind::Const: return e;
    case Kind::Var: return e->value == id ? expr_const(value) : e;
    case Kind::Sum: {
      Expr out = expr_const(e->value);
      for (auto& [k, atom] : e->terms) out = expr_add(out, expr_mul(expr_substitute(atom, id, value), k));
      return out;
    }
    case Kind::Div: return expr_div(expr_substitute(e->terms[0].second, id, value), e->value);
    case Kind::Mod: return expr_mod(expr_substitute(e->terms[0].second, id, value), e->value);
  }
  return e;
}

bool expr_is_const(const Expr& e, int64_t* value) {
  if (e->kind != Kind::Const) return false;
  if (value) *value = e->value;
  return true;
}

static bool contains_var(const Expr& e, int id) {
  if (e->kind == Kind::Var) return e->value == id;
  for (auto& t : e->terms)
    if (contains_var(t.second, id)) return true;
  return false;
}

bool expr_depends_on(const Expr& e, int var_id) { return contains_var(e, var_id); }

bool expr_divisible(const Expr& e, int64_t d) {
  if (e->kind == Kind::Const) return e->value % d == 0;
  if (e->kind != Kind::Sum) return false;
  if (e->value % d != 0) return false;
  for (auto& [k, atom] : e->terms)
    if (k % d != 0) return false;
  return true;
}

int64_t expr_coefficient(const Expr& e, int var_id) {
  if (e->kind == Kind::Var) return e->value == var_id ? 1 : 0;
  if (e->kind != Kind::Sum) return contains_var(e, var_id) ? -1 : 0;
  int64_t coef = 0;
  for (auto& [k, atom] : e->terms) {
    if (atom->kind == Kind::Var && atom->value == var_id) coef = k;
    else if (contains_var(atom, var_id)) return -1;
  }
  return coef;
}

bool add_bound(std::vector<IndexBound>& bounds, IndexBound b) {
  if (b.e->lo >= b.lo && b.e->hi < b.hi) return true;
  if (b.e->hi < b.lo || b.e->lo >= b.hi) return false;
  bounds.push_back(std::move(b));
  return true;
}

std::vector<IndexBound> substitute_bounds(const std::vector<IndexBound>& bounds, int id, int64_t value, bool* never) {
  std::vector<IndexBound> out;
  *never = false;
  for (auto& b : bounds)
    if (!add_bound(out, {expr_substitute(b.e, id, value), b.lo, b.hi})) *never = true;
  return out;
}

std::string render_expr(const Expr& e, const std::vector<std::string>& var_names) {
  switch (e->kind) {
    case Kind::Const: return std::to_string(e->value) + (e->value > 2147483647LL || e->value < -2147483647LL ? "L" : "");
    case Kind::Var: return var_names.at(e->value);
    case Kind::Div:
    case Kind::Mod: {
      // Operands are non-negative wherever the value is used (masked loads cover the rest), so
      // C's truncating division equals floor division there.
      std::string inner = render_expr(e->terms[0].second, var_names);
      return "(" + inner + (e->kind == Kind::Div ? "/" : "%") + std::to_string(e->value) + ")";
    }
    case Kind::Sum: {
      std::string s;
      for (auto& [k, atom] : e->terms) {
        std::string a = render_expr(atom, var_names);
        std::string term = k == 1 ? a : k == -1 ? "-" + a : a + "*" + std::to_string(k);
        s += s.empty() ? term : (term[0] == '-' ? term : "+" + term);
      }
      if (e->value != 0) s += (e->value > 0 ? "+" : "") + std::to_string(e->value);
      return "(" + s + ")";
    }
  }
  return "?";
}

}  // namespace lathe
