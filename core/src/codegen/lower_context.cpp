// The lowering's bookkeeping of contexts: memo and reduction keys, the context in which an output
// reads a reduction, and the small constructors the walk shares.
#include <cstring>
#include <limits>
#include <set>

#include "lathe/error.h"
#include "lowerer.h"

namespace lathe {

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

double reduce_identity(Op reduce_op, DType dtype) {
  if (reduce_op == Op::Add) return 0;
  if (is_float(dtype)) return -std::numeric_limits<double>::infinity();
  switch (dtype) {
    case DType::Int32: return std::numeric_limits<int32_t>::min();
    case DType::Int64: return static_cast<double>(std::numeric_limits<int64_t>::min());
    default: return 0;  // unsigned and bool
  }
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
  collect_reads(value_, output, input_of_, found, seen);
  for (Node* v : more_values_)
    if (v->shape == value_->shape) collect_reads(v, output, input_of_, found, seen);
  std::optional<Ctx> only;
  for (auto& [n, c] : found) {
    if (n != r) continue;
    if (only) return std::nullopt;  // read at two places: no single context
    only = c;
  }
  return only;
}

bool Lowerer::memoized(const std::string& memo) const {
  for (auto& scope : cse_)
    if (scope.count(memo)) return true;
  return false;
}

std::vector<std::pair<Node*, Ctx>> Lowerer::top_reads(Node* target) { return read_sites(value_, input_of_, target); }

}  // namespace lathe
