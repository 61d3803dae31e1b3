// Where a kernel reads an element: index contexts mapped through movement ops, the reductions
// a value reads and at which contexts, and the small constructors the walk shares.
#include <cstring>
#include <limits>
#include <set>

#include "lathe/error.h"
#include "lowerer.h"

namespace lathe {

std::string Ctx::key() const {
  std::string k;
  for (auto& e : idx) k += e->key + ",";
  for (auto& b : valid) k += "|" + b.e->key + ":" + std::to_string(b.lo) + ":" + std::to_string(b.hi);
  return k + (never ? "!" : "");
}

Ctx map_ctx(const Node* n, const Ctx& c) {
  Ctx out;
  out.valid = c.valid;
  out.never = c.never;
  const Shape& src = n->src[0]->shape;
  const size_t nd = src.size();
  out.idx.resize(nd);
  switch (n->op) {
    case Op::Reshape: {
      Shape sstr = contiguous_strides(src);
      Expr flat = flat_index(c, n->shape);
      for (size_t d = 0; d < nd; ++d) {
        if (src[d] == 1) { out.idx[d] = expr_const(0); continue; }
        Expr e = expr_div(flat, sstr[d]);
        out.idx[d] = d == 0 ? e : expr_mod(e, src[d]);
      }
      break;
    }
    case Op::Permute:
      for (size_t i = 0; i < nd; ++i) out.idx[n->arg[i]] = c.idx[i];
      break;
    case Op::Expand:
      for (size_t d = 0; d < nd; ++d) out.idx[d] = src[d] == 1 ? expr_const(0) : c.idx[d];
      break;
    case Op::Pad:
      for (size_t d = 0; d < nd; ++d) {
        out.idx[d] = expr_add(c.idx[d], -n->arg[2 * d]);
        if (!add_bound(out.valid, {out.idx[d], 0, src[d]})) out.never = true;
      }
      break;
    case Op::Shrink:
      for (size_t d = 0; d < nd; ++d) out.idx[d] = expr_add(c.idx[d], n->arg[2 * d]);
      break;
    case Op::Flip:
      out.idx = c.idx;
      for (int64_t a : n->arg) out.idx[a] = expr_add(expr_mul(c.idx[a], -1), src[a] - 1);
      break;
    default: throw Error("map_ctx: not a movement op");
  }
  return out;
}

Expr flat_index(const Ctx& c, const Shape& shape) {
  Shape strides = contiguous_strides(shape);
  Expr index = expr_const(0);
  for (size_t d = 0; d < strides.size(); ++d) index = expr_add(index, expr_mul(c.idx[d], strides[d]));
  return index;
}

Inst make_const(DType dtype, double value) {
  Inst in{IOp::Const, dtype};
  if (is_float(dtype)) in.fvalue = value;
  else in.ivalue = static_cast<int64_t>(value);
  return in;
}

Inst make_const_acc(DType dtype, double init) {
  Inst acc{IOp::DefineAcc, dtype};
  if (is_float(dtype)) acc.fvalue = init;
  else acc.ivalue = static_cast<int64_t>(init);
  return acc;
}

int64_t reduce_length(const Node* r) {
  int64_t n = 1;
  for (int64_t a : r->arg) n *= r->src[0]->shape[a];
  return n;
}

bool computes_reduction(Node* n, const std::function<Buffer*(Node*)>& input_of) {
  std::vector<Node*> stack = {n};
  std::set<Node*> seen;
  while (!stack.empty()) {
    Node* c = stack.back();
    stack.pop_back();
    if (input_of(c) || !seen.insert(c).second) continue;
    if (c->op == Op::Reduce) return true;
    for (auto& s : c->src) stack.push_back(s.get());
  }
  return false;
}

double reduce_identity(Op reduce_op, DType dtype) {
  if (reduce_op == Op::Add) return 0;
  if (is_float(dtype)) return -std::numeric_limits<double>::infinity();
  switch (dtype) {
    case DType::Int32: return std::numeric_limits<int32_t>::min();
    case DType::Int64: return static_cast<double>(std::numeric_limits<int64_t>::min());
    default: return 0;  // unsigned and bool
  }
}

namespace {

// The element of `shape` whose index along axis d is variable d.
Ctx variable_element(const Shape& shape) {
  Ctx ctx;
  for (size_t d = 0; d < shape.size(); ++d) ctx.idx.push_back(expr_var(static_cast<int>(d), 0, shape[d] - 1));
  return ctx;
}

}  // namespace

bool reads_element_for_element(Node* value, Node* target, const std::function<Buffer*(Node*)>& input_of) {
  if (numel(target->shape) != numel(value->shape)) return false;
  Buffer probe(nullptr, value->dtype, numel(value->shape));
  std::vector<std::pair<Node*, Ctx>> reads = Lowerer(value, &probe, input_of).top_reads(target);
  const std::string element = flat_index(variable_element(value->shape), value->shape)->key;
  for (auto& [n, ctx] : reads)
    if (!ctx.valid.empty() || ctx.never || flat_index(ctx, target->shape)->key != element) return false;
  return !reads.empty();
}

std::vector<std::pair<Node*, Ctx>> Lowerer::top_reads(Node* target) {
  std::vector<std::pair<Node*, Ctx>> tops;
  std::map<std::pair<Node*, std::string>, bool> seen;
  collect_reduces(value_, variable_element(value_->shape), tops, seen, target);
  return tops;
}

// The epilogue of a register tile over one reduction, computed from the stored reductions:
// each register's reduction is stored to its output element, then read back as the
// reduction's value. Only where that is the same element and type, and nothing else of the
// kernel reads the output; returns false (nothing emitted) otherwise.

std::string Lowerer::memo_key(const Node* n, const Ctx& c) { return "N" + std::to_string(reinterpret_cast<uintptr_t>(n)) + "@" + c.key(); }

Ctx Lowerer::reduce_src_ctx(Node* r, const Ctx& c, const std::vector<Expr>& rvars) {
  Ctx s = c;
  for (size_t i = 0; i < r->arg.size(); ++i) s.idx[r->arg[i]] = rvars[i];
  return s;
}

std::string Lowerer::reduce_key(Node* r, const Ctx& c) { return std::to_string(reinterpret_cast<uintptr_t>(r)) + "@" + c.key(); }

std::optional<Ctx> Lowerer::reduce_ctx_for(Node* r, const Ctx& output) {
  std::vector<std::pair<Node*, Ctx>> found;
  std::map<std::pair<Node*, std::string>, bool> seen;
  collect_reduces(value_, output, found, seen);
  for (Node* v : more_values_)
    if (v->shape == value_->shape) collect_reduces(v, output, found, seen);
  std::optional<Ctx> only;
  for (auto& [n, c] : found) {
    if (n != r) continue;
    if (only) return std::nullopt;  // read at two places: no single context
    only = c;
  }
  return only;
}

void Lowerer::collect_reduces(Node* n, const Ctx& c, std::vector<std::pair<Node*, Ctx>>& tops,
                              std::map<std::pair<Node*, std::string>, bool>& seen, Node* target) {
  if (c.never || n->op == Op::Const || input_of_(n)) return;
  // The graph is a DAG: visit each (node, context) once or shared subgraphs explode.
  if (seen[{n, c.key()}]) return;
  seen[{n, c.key()}] = true;
  if (n == target || (!target && n->op == Op::Reduce)) tops.push_back({n, c});
  if (n == target || n->op == Op::Reduce) return;
  if (is_movement(n->op)) return collect_reduces(n->src[0].get(), map_ctx(n, c), tops, seen, target);
  for (auto& s : n->src) collect_reduces(s.get(), c, tops, seen, target);
}

bool Lowerer::memoized(const std::string& memo) const {
  for (auto& scope : cse_)
    if (scope.count(memo)) return true;
  return false;
}

}  // namespace lathe
