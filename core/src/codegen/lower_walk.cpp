// The walk from graph nodes to instructions: memoised per (node, context), deduplicated per
// loop scope, with the variables, loops and parameters it opens, and the operation estimate.
#include <cstring>

#include "lathe/error.h"
#include "lowerer.h"

namespace lathe {

int Lowerer::new_var(const std::string& prefix) {
  int id = static_cast<int>(k_.var_names.size());
  k_.var_names.push_back(prefix + std::to_string(id));
  return id;
}

void Lowerer::open_range(int var, int64_t extent, bool global, bool reduction) {
  Inst r{IOp::Range};
  r.var = var;
  r.extent = extent;
  r.global = global;
  r.reduction = reduction;
  if (global) k_.global_size = extent;
  k_.insts.push_back(r);
  cse_.emplace_back();
}

void Lowerer::close_range() {
  k_.insts.push_back(Inst{IOp::EndRange});
  cse_.pop_back();
}

std::vector<Expr> Lowerer::open_reduce_loops(Node* r) {
  std::vector<Expr> vars;
  for (int64_t a : r->arg) {
    int64_t extent = r->src[0]->shape[a];
    int v = new_var("r");
    vars.push_back(expr_var(v, 0, extent - 1));
    open_range(v, extent, false, true);
  }
  return vars;
}

std::string Lowerer::cse_key(const Inst& in) {
  std::string k = std::to_string(static_cast<int>(in.op)) + ":" + std::to_string(static_cast<int>(in.dtype)) + ":" +
                  std::to_string(static_cast<int>(in.alu)) + ":";
  for (int s : in.src) k += std::to_string(s) + ",";
  if (in.op == IOp::Const) {  // exact: to_string would print 2^-24 and 0 alike
    uint64_t bits;
    std::memcpy(&bits, &in.fvalue, sizeof bits);
    k += std::to_string(bits) + "/" + std::to_string(in.ivalue);
  }
  if (in.op == IOp::Load) k += (in.local ? "l" : "b") + std::to_string(in.buffer) + "[" + in.index->key + "]";
  if (in.op == IOp::Load || in.op == IOp::Const) {
    for (auto& b : in.valid) k += "|" + b.e->key + ":" + std::to_string(b.lo) + ":" + std::to_string(b.hi);
  }
  return k;
}

int Lowerer::emit(const Inst& in, bool cse) {
  std::string key;
  if (cse) {
    key = cse_key(in);
    for (auto& scope : cse_) {
      auto it = scope.find(key);
      if (it != scope.end()) return it->second;
    }
  }
  k_.insts.push_back(in);
  int reg = static_cast<int>(k_.insts.size()) - 1;
  // Unconditional constants are valid everywhere: keep them in the outermost scope.
  if (cse) (in.op == IOp::Const && in.valid.empty() ? cse_.front() : cse_.back())[key] = reg;
  return reg;
}

int Lowerer::param(Buffer* b, DType dtype) {
  auto it = param_index_.find(b);
  if (it != param_index_.end()) return it->second;
  int i = static_cast<int>(params_.size());
  params_.push_back(b);
  param_index_[b] = i;
  k_.params.push_back({dtype, b->numel(), false});
  return i;
}

int Lowerer::lower(Node* n, const Ctx& c) {
  if (c.never) return emit(make_const(n->dtype, 0), true);
  // Memoised per (node, context) within the open loop scopes: the graph is a DAG.
  std::string memo = memo_key(n, c);
  for (auto& scope : cse_)
    if (auto it = scope.find(memo); it != scope.end()) return it->second;
  int reg = lower_uncached(n, c);
  cse_.back()[memo] = reg;
  return reg;
}

int Lowerer::lower_uncached(Node* n, const Ctx& c) {
  {
    if (Buffer* b = input_of_(n)) {
      Expr index = flat_index(c, n->shape);
      Inst ld{IOp::Load, n->dtype};
      ld.buffer = param(b, n->dtype);
      ld.index = index;
      ld.valid = c.valid;
      return emit(ld, true);
    }
  }
  switch (n->op) {
    case Op::Const: {
      // Under padding a constant is itself only where the bounds hold, zero elsewhere.
      Inst k = make_const(n->dtype, is_float(n->dtype) ? n->fvalue : static_cast<double>(n->ivalue));
      k.valid = c.valid;
      return emit(k, true);
    }
    case Op::Detach: case Op::Contiguous: return lower(n->src[0].get(), c);
    case Op::Reduce: {
      auto it = top_acc_.find({n, c.key()});
      if (it != top_acc_.end()) return it->second;
      int a = emit(make_const_acc(n->dtype, reduce_identity(n->reduce_op, n->dtype)), false);
      std::vector<Expr> rvars = open_reduce_loops(n);
      int v = lower(n->src[0].get(), reduce_src_ctx(n, c, rvars));
      emit(Inst{IOp::AccUpdate, n->dtype, n->reduce_op, {a, v}}, false);
      for (size_t i = 0; i < rvars.size(); ++i) close_range();
      return a;
    }
    default: break;
  }
  if (is_movement(n->op)) return lower(n->src[0].get(), map_ctx(n, c));
  if (is_elementwise(n->op)) {
    Inst in{IOp::Alu, n->dtype, n->op};
    for (auto& s : n->src) in.src.push_back(lower(s.get(), c));
    return emit(in, true);
  }
  throw Error(std::string("lowering: unexpected ") + op_name(n->op) + " inside a kernel (shape " + to_string(n->shape) + ")");
}

void Lowerer::estimate() {
  int64_t mult = k_.local_size > 0 ? k_.global_size : 1;  // work-groups: the body runs once per work-item
  std::vector<int64_t> stack;
  for (auto& in : k_.insts) {
    if (in.op == IOp::Range) {
      stack.push_back(mult);
      mult *= in.extent;
    } else if (in.op == IOp::EndRange) {
      mult = stack.back();
      stack.pop_back();
    } else if (in.op == IOp::Load || in.op == IOp::Alu || in.op == IOp::AccUpdate || in.op == IOp::Store) {
      k_.ops_estimate += mult;
    }
  }
}

}  // namespace lathe
