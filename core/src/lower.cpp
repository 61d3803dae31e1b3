#include "lathe/lower.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>

#include "lathe/error.h"

namespace lathe {
namespace {

// Where one element of a node is read: an index per axis and the bounds under which it is
// valid (padding makes the rest read as zero).
struct Ctx {
  std::vector<Expr> idx;
  std::vector<IndexBound> valid;
  bool never = false;  // statically outside every valid region: the value is zero
  std::string key() const {
    std::string k;
    for (auto& e : idx) k += e->key + ",";
    for (auto& b : valid) k += "|" + b.e->key + ":" + std::to_string(b.lo) + ":" + std::to_string(b.hi);
    return k + (never ? "!" : "");
  }
};

// The context of a movement op's source for a given context of the op's output.
Ctx map_ctx(const Node* n, const Ctx& c) {
  Ctx out;
  out.valid = c.valid;
  out.never = c.never;
  const Shape& src = n->src[0]->shape;
  const size_t nd = src.size();
  out.idx.resize(nd);
  switch (n->op) {
    case Op::Reshape: {
      Shape ostr = contiguous_strides(n->shape), sstr = contiguous_strides(src);
      Expr flat = expr_const(0);
      for (size_t d = 0; d < c.idx.size(); ++d) flat = expr_add(flat, expr_mul(c.idx[d], ostr[d]));
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

Inst make_const(DType dtype, double value) {
  Inst in{IOp::Const, dtype};
  if (is_float(dtype)) in.fvalue = value;
  else in.ivalue = static_cast<int64_t>(value);
  return in;
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

class Lowerer {
 public:
  Lowerer(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of)
      : value_(value), input_of_(input_of) {
    params_.push_back(output);
    param_index_[output] = 0;
    k_.params.push_back({value->dtype, output->numel(), true});
    cse_.emplace_back();
  }

  LoweredKernel run(const LoweringOptions& opt) {
    const Shape& S = value_->shape;
    const size_t nd = S.size();
    std::vector<int64_t> up = opt.upcast.empty() ? std::vector<int64_t>(nd, 1) : opt.upcast;
    std::vector<int> order = opt.loop_order;
    if (order.empty())
      for (size_t d = 0; d < nd; ++d) order.push_back(static_cast<int>(d));

    // Outer loops over output axes, the first non-trivial one parallel.
    outer_.assign(nd, expr_const(0));
    outer_var_.assign(nd, -1);
    int open = 0;
    std::string name = "E";
    if (opt.flatten_outer) {
      // One parallel index g over all output loops; each axis is g / stride % extent.
      int64_t total = 1;
      for (int d : order) {
        name += "_" + std::to_string(S[d]);
        total *= S[d] / up[d];
      }
      if (total > 1) {
        int v = new_var("g", total);
        Expr g = expr_var(v, 0, total - 1);
        int64_t stride = total;
        for (int d : order) {
          int64_t extent = S[d] / up[d];
          stride /= extent;
          if (extent > 1) outer_[d] = expr_mod(expr_div(g, stride), extent), outer_var_[d] = v;
        }
        open_range(v, total, true);
        ++open;
      }
    } else {
      for (int d : order) {
        int64_t extent = S[d] / up[d];
        name += "_" + std::to_string(S[d]);
        if (extent <= 1) continue;
        int v = new_var(open == 0 ? "g" : "i", extent);
        outer_var_[d] = v;
        outer_[d] = expr_var(v, 0, extent - 1);
        open_range(v, extent, open == 0);
        ++open;
      }
    }

    // Every combination of upcast offsets is one register of the tile.
    std::vector<std::vector<int64_t>> combos = {{}};
    for (size_t d = 0; d < nd; ++d) {
      std::vector<std::vector<int64_t>> next;
      for (auto& c : combos)
        for (int64_t u = 0; u < up[d]; ++u) {
          next.push_back(c);
          next.back().push_back(u);
        }
      combos = std::move(next);
    }
    std::vector<Ctx> ctxs;
    for (auto& c : combos) {
      Ctx ctx;
      for (size_t d = 0; d < nd; ++d) ctx.idx.push_back(expr_add(expr_mul(outer_[d], up[d]), c[d]));
      ctxs.push_back(ctx);
    }

    // Reductions at the top of the expression run first, one loop nest each, every tile
    // register accumulating inside it; the epilogue then reads the accumulators.
    std::vector<std::pair<Node*, Ctx>> tops;
    std::map<std::pair<Node*, std::string>, bool> seen;
    for (auto& ctx : ctxs) collect_reduces(value_, ctx, tops, seen);
    std::vector<Node*> reduce_nodes;
    for (auto& [r, ctx] : tops)
      if (std::find(reduce_nodes.begin(), reduce_nodes.end(), r) == reduce_nodes.end()) reduce_nodes.push_back(r);
    for (Node* r : reduce_nodes) {
      name[0] = 'R';
      std::vector<std::pair<int, Ctx>> accs;
      for (auto& [rn, ctx] : tops) {
        if (rn != r) continue;
        Inst acc{IOp::DefineAcc, r->dtype};
        double init = reduce_identity(r->reduce_op, r->dtype);
        if (is_float(r->dtype)) acc.fvalue = init;
        else acc.ivalue = static_cast<int64_t>(init);
        accs.push_back({emit(acc, false), ctx});
      }
      in_top_reduce_ = true;
      std::vector<Expr> rvars = open_reduce_loops(r);
      for (auto& [acc, ctx] : accs) {
        int v = lower(r->src[0].get(), reduce_src_ctx(r, ctx, rvars));
        Inst upd{IOp::AccUpdate, r->dtype, r->reduce_op, {acc, v}};
        emit(upd, false);
      }
      for (size_t i = 0; i < rvars.size(); ++i) close_range();
      in_top_reduce_ = false;
      for (auto& [acc, ctx] : accs) top_acc_[{r, ctx.key()}] = acc;
      for (int64_t a : r->arg) name += "_" + std::to_string(r->src[0]->shape[a]);
    }

    Shape ostr = contiguous_strides(S);
    for (auto& ctx : ctxs) {
      int v = lower(value_, ctx);
      Expr index = expr_const(0);
      for (size_t d = 0; d < nd; ++d) index = expr_add(index, expr_mul(ctx.idx[d], ostr[d]));
      Inst st{IOp::Store, value_->dtype};
      st.src = {v};
      st.buffer = 0;
      st.index = index;
      emit(st, false);
    }
    for (int i = 0; i < open; ++i) close_range();

    k_.name = name;
    for (auto& c : k_.name)
      if (c == '-') c = 'm';
    estimate();
    return {std::move(k_), std::move(params_)};
  }

  // Loads inside top-level reductions and the outer loop variable of each output axis: the
  // heuristics look for operands that do not depend on an axis (reuse worth a register tile).
  std::vector<Expr> reduce_loads_;
  std::vector<int> outer_var_;

 private:
  int new_var(const std::string& prefix, int64_t) {
    int id = static_cast<int>(k_.var_names.size());
    k_.var_names.push_back(prefix + std::to_string(id));
    return id;
  }

  void open_range(int var, int64_t extent, bool global) {
    Inst r{IOp::Range};
    r.var = var;
    r.extent = extent;
    r.global = global;
    if (global) k_.global_size = extent;
    k_.insts.push_back(r);
    cse_.emplace_back();
  }

  void close_range() {
    k_.insts.push_back(Inst{IOp::EndRange});
    cse_.pop_back();
  }

  std::vector<Expr> open_reduce_loops(Node* r) {
    std::vector<Expr> vars;
    for (int64_t a : r->arg) {
      int64_t extent = r->src[0]->shape[a];
      int v = new_var("r", extent);
      vars.push_back(expr_var(v, 0, extent - 1));
      open_range(v, extent, false);
    }
    return vars;
  }

  static Ctx reduce_src_ctx(Node* r, const Ctx& c, const std::vector<Expr>& rvars) {
    Ctx s = c;
    for (size_t i = 0; i < r->arg.size(); ++i) s.idx[r->arg[i]] = rvars[i];
    return s;
  }

  std::string cse_key(const Inst& in) {
    std::string k = std::to_string(static_cast<int>(in.op)) + ":" + std::to_string(static_cast<int>(in.dtype)) + ":" +
                    std::to_string(static_cast<int>(in.alu)) + ":";
    for (int s : in.src) k += std::to_string(s) + ",";
    if (in.op == IOp::Const) {  // exact: to_string would print 2^-24 and 0 alike
      uint64_t bits;
      std::memcpy(&bits, &in.fvalue, sizeof bits);
      k += std::to_string(bits) + "/" + std::to_string(in.ivalue);
    }
    if (in.op == IOp::Load) k += "b" + std::to_string(in.buffer) + "[" + in.index->key + "]";
    if (in.op == IOp::Load || in.op == IOp::Const) {
      for (auto& b : in.valid) k += "|" + b.e->key + ":" + std::to_string(b.lo) + ":" + std::to_string(b.hi);
    }
    return k;
  }

  int emit(const Inst& in, bool cse) {
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

  int param(Buffer* b, DType dtype) {
    auto it = param_index_.find(b);
    if (it != param_index_.end()) return it->second;
    int i = static_cast<int>(params_.size());
    params_.push_back(b);
    param_index_[b] = i;
    k_.params.push_back({dtype, b->numel(), false});
    return i;
  }

  void collect_reduces(Node* n, const Ctx& c, std::vector<std::pair<Node*, Ctx>>& tops,
                       std::map<std::pair<Node*, std::string>, bool>& seen) {
    if (c.never || n->op == Op::Const || input_of_(n)) return;
    // The graph is a DAG: visit each (node, context) once or shared subgraphs explode.
    if (seen[{n, c.key()}]) return;
    seen[{n, c.key()}] = true;
    if (n->op == Op::Reduce) {
      tops.push_back({n, c});
      return;
    }
    if (is_movement(n->op)) return collect_reduces(n->src[0].get(), map_ctx(n, c), tops, seen);
    for (auto& s : n->src) collect_reduces(s.get(), c, tops, seen);
  }

  int lower(Node* n, const Ctx& c) {
    if (c.never) return emit(make_const(n->dtype, 0), true);
    // Memoised per (node, context) within the open loop scopes: the graph is a DAG.
    std::string memo = "N" + std::to_string(reinterpret_cast<uintptr_t>(n)) + "@" + c.key();
    for (auto& scope : cse_)
      if (auto it = scope.find(memo); it != scope.end()) return it->second;
    int reg = lower_uncached(n, c);
    cse_.back()[memo] = reg;
    return reg;
  }

  int lower_uncached(Node* n, const Ctx& c) {
    {
      if (Buffer* b = input_of_(n)) {
        Shape strides = contiguous_strides(n->shape);
        Expr index = expr_const(0);
        for (size_t d = 0; d < strides.size(); ++d) index = expr_add(index, expr_mul(c.idx[d], strides[d]));
        Inst ld{IOp::Load, n->dtype};
        ld.buffer = param(b, n->dtype);
        ld.index = index;
        ld.valid = c.valid;
        if (in_top_reduce_) reduce_loads_.push_back(index);
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
        Inst acc{IOp::DefineAcc, n->dtype};
        double init = reduce_identity(n->reduce_op, n->dtype);
        if (is_float(n->dtype)) acc.fvalue = init;
        else acc.ivalue = static_cast<int64_t>(init);
        int a = emit(acc, false);
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

  void estimate() {
    int64_t mult = 1;
    std::vector<int64_t> stack;
    for (auto& in : k_.insts) {
      if (in.op == IOp::Range) {
        stack.push_back(mult);
        mult *= in.extent;
      } else if (in.op == IOp::EndRange) {
        mult = stack.back();
        stack.pop_back();
      } else if (in.op != IOp::Const && in.op != IOp::DefineAcc) {
        k_.ops_estimate += mult;
      }
    }
  }

  Node* value_;
  std::function<Buffer*(Node*)> input_of_;
  Kernel k_;
  std::vector<Buffer*> params_;
  std::unordered_map<Buffer*, int> param_index_;
  std::vector<std::unordered_map<std::string, int>> cse_;
  std::map<std::pair<Node*, std::string>, int> top_acc_;
  std::vector<Expr> outer_;
  bool in_top_reduce_ = false;
};

}  // namespace

LoweredKernel lower_kernel(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of,
                           const LoweringOptions& options) {
  if (!options.upcast.empty()) {
    check(options.upcast.size() == value->shape.size(), "lowering: upcast has the wrong number of axes");
    for (size_t d = 0; d < options.upcast.size(); ++d)
      check(options.upcast[d] >= 1 && value->shape[d] % options.upcast[d] == 0,
            "lowering: upcast " + std::to_string(options.upcast[d]) + " does not divide axis " + std::to_string(d) +
                " of " + to_string(value->shape));
  }
  return Lowerer(value, output, input_of).run(options);
}

LoweringOptions default_options(Node* value, const std::function<Buffer*(Node*)>& input_of, bool flatten_outer) {
  const Shape& S = value->shape;
  LoweringOptions opt;
  opt.flatten_outer = flatten_outer;
  opt.upcast.assign(S.size(), 1);
  Buffer probe(nullptr, value->dtype, numel(S));
  Lowerer trial(value, &probe, input_of);
  LoweredKernel plain = trial.run({});
  const int64_t body = static_cast<int64_t>(plain.kernel.insts.size());
  // Big tiles pay for their compile time (seconds for a 256-register tile) only on big
  // kernels; below ~64M operations a 16-register tile is as fast in practice.
  const int64_t max_tile = plain.kernel.ops_estimate >= (int64_t{1} << 26) ? 256 : 16;
  if (trial.reduce_loads_.empty()) return opt;
  // An output axis earns a register tile when some operand does not depend on it (its loads
  // are reused across the tile) while another does. The axis where a dependent operand is
  // contiguous gets the wide factor, which the C compiler turns into vector loads and FMAs.
  int wide = -1, narrow = -1, vector_axis = -1;
  for (int d = static_cast<int>(S.size()) - 1; d >= 0; --d) {
    int v = trial.outer_var_[d];
    if (v < 0) continue;
    bool reused = false, contiguous = false, dependent = false;
    for (auto& e : trial.reduce_loads_) {
      int64_t coef = expr_coefficient(e, v);
      reused |= coef == 0;
      dependent |= coef != 0;
      contiguous |= coef == 1;
    }
    if (contiguous && vector_axis < 0) vector_axis = d;
    if (!reused || !dependent) continue;
    if (contiguous && wide < 0) wide = d;
    else if (narrow < 0) narrow = d;
  }
  // Unrolled tiles multiply the body: keep the kernel's size within a budget the C compiler
  // digests quickly (about 4k instructions).
  auto pick = [&](int d, std::initializer_list<int64_t> factors, int64_t other) {
    if (d < 0) return;
    for (int64_t f : factors)
      if (S[d] % f == 0 && S[d] >= f && body * f * other <= 4096 && f * other <= max_tile) {
        opt.upcast[d] = f;
        return;
      }
  };
  // 32x8 (the wide axis outermost) keeps 256 accumulators in vector registers and reuses a
  // column strip of the contiguous operand across the rows of the tile: measured at about
  // 4x a 16x4 tile at 2048^3 on a 2-core AVX-512 machine.
  // Without reuse, a reduction whose operand is contiguous along an output axis (a column
  // sum) still gains from computing 16 neighbouring outputs at once: vector loads.
  if (wide < 0 && narrow < 0) wide = vector_axis;
  pick(wide, {32, 16, 8, 4}, 1);
  pick(narrow, {8, 4, 2}, opt.upcast[wide < 0 ? 0 : wide]);
  if (wide >= 0 && opt.upcast[wide] > 1) {
    opt.loop_order.push_back(wide);
    for (int d = 0; d < static_cast<int>(S.size()); ++d)
      if (d != wide) opt.loop_order.push_back(d);
  }
  return opt;
}

}  // namespace lathe
