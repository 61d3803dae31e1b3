// Lowering: the walk from a kernel's graph fragment to kernel IR: loops, register tiles, epilogues, stores.
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "lathe/error.h"
#include "lowerer.h"
#include "online_softmax.h"

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

Lowerer::Lowerer(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of)
    : value_(value), input_of_(input_of) {
  params_.push_back(output);
  param_index_[output] = 0;
  k_.params.push_back({value->dtype, output->numel(), true});
  cse_.emplace_back();
}

void Lowerer::add_output(Node* value, Buffer* output) {
  check(value->shape == value_->shape || numel(value->shape) <= numel(value_->shape),
        "lowering: the outputs of one kernel must have one shape (or be values its first output reads)");
  more_values_.push_back(value);
  int i = static_cast<int>(params_.size());
  params_.push_back(output);
  param_index_[output] = i;
  k_.params.push_back({value->dtype, output->numel(), true});
}

constexpr size_t kManyReductions = 8;

LoweredKernel Lowerer::run(const LoweringOptions& opt) {
  const Shape& S = value_->shape;
  const size_t nd = S.size();
  std::vector<int64_t> up = opt.upcast.empty() ? std::vector<int64_t>(nd, 1) : opt.upcast;
  std::vector<int> order = opt.loop_order;
  if (order.empty())
    for (size_t d = 0; d < nd; ++d) order.push_back(static_cast<int>(d));
  const bool groups = !opt.local.empty() || opt.group_reduce > 1;
  spread_rows_ = opt.spread_rows;
  check(!spread_rows_ || (opt.group_reduce > 1 && nd > 0 && S[nd - 1] == opt.group_reduce * up[nd - 1]),
        "lowering: a row kernel's lanes times its upcast must cover the last axis");
  std::string name = "E";
  outer_.assign(nd, expr_const(0));
  outer_var_.assign(nd, -1);
  if (groups) {
    open_groups(opt, up, order, name);
  } else {
    plan_pack(opt, up, order);
    open_output_loops(opt, up, order, name);
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
    for (size_t d = 0; d < nd; ++d)
      ctx.idx.push_back(spread_rows_ && d == nd - 1 ? expr_add(reduce_lane_, c[d] * opt.group_reduce)  // coalesced along the row
                                                    : expr_add(expr_mul(outer_[d], up[d]), c[d]));
    ctxs.push_back(ctx);
  }

  // Reductions at the top of the expression run first, one loop nest each, every tile
  // register accumulating inside it; the epilogue then reads the accumulators. Outputs of
  // another shape are found inside the first value, which computes them.
  std::vector<Node*> values = {value_};
  values.insert(values.end(), more_values_.begin(), more_values_.end());
  auto full = [&](size_t o) { return values[o]->shape == S; };
  bool all_full = true;
  for (size_t o = 0; o < values.size(); ++o) all_full &= full(o);
  std::vector<std::pair<Node*, Ctx>> tops;
  std::vector<size_t> value_of;  // per entry of tops: the value it was found in first
  std::map<std::pair<Node*, std::string>, bool> seen;
  for (auto& ctx : ctxs) {
    size_t before = tops.size();
    for (size_t o = 0; o < values.size(); ++o) {
      if (full(o)) collect_reduces(values[o], ctx, tops, seen);
      value_of.resize(tops.size(), o);
    }
    for (size_t i = before; i < tops.size(); ++i) output_ctx_[reduce_key(tops[i].first, tops[i].second)] = ctx;
  }
  std::vector<size_t> reduce_value;  // per top reduction: the value that reads it first
  for (size_t t = 0; t < tops.size(); ++t)
    if (std::find(top_reduces_.begin(), top_reduces_.end(), tops[t].first) == top_reduces_.end()) {
      top_reduces_.push_back(tops[t].first);
      reduce_value.push_back(value_of[t]);
    }
  auto accs_of = [&](Node* r) {
    Accs accs;
    for (auto& [rn, ctx] : tops)
      if (rn == r) accs.push_back({emit(make_const_acc(r->dtype, reduce_identity(r->reduce_op, r->dtype)), false), ctx});
    return accs;
  };
  // A sum that reads a maximum of this kernel through exp2 runs in the maximum's pass.
  std::map<Node*, std::pair<Node*, double>> online;  // maximum -> (its sum, rate)
  std::set<Node*> lowered_tops;
  for (Node* s : top_reduces_)
    for (Node* m : top_reduces_)
      if (auto rate = online_rate(s, m, input_of_); rate && !online.count(m)) online[m] = {s, *rate};
  auto lower_top = [&](Node* r) {
    if (!lowered_tops.insert(r).second) return;  // a sum done in its maximum's pass
    name[0] = 'R';
    Accs accs = accs_of(r);
    in_top_reduce_ = true;
    // The pair runs online when the sum is read at the maximum's contexts, register by register.
    auto read_alike = [&](Node* a, Node* b) {
      std::vector<std::string> ka, kb;
      for (auto& [rn, ctx] : tops) {
        if (rn == a) ka.push_back(ctx.key());
        if (rn == b) kb.push_back(ctx.key());
      }
      return ka == kb;
    };
    auto pair = online.find(r);
    if (pair != online.end() && opt.stage_chunk == 0 && !lowered_tops.count(pair->second.first) && read_alike(r, pair->second.first)) {
      auto [sum, rate] = pair->second;
      Accs sums = accs_of(sum);
      reduce_online(r, sum, accs, sums, rate, opt.group_reduce, opt.reduce_split);
      lowered_tops.insert(sum);
      for (auto& [acc, ctx] : sums) top_acc_[{sum, ctx.key()}] = acc;
    } else if (opt.group_reduce > 1) {
      reduce_grouped(r, accs, opt.group_reduce, opt.reduce_split);
    } else if (r == pack_.reduce && pack_.array >= 0) {
      reduce_packed(r, accs, up);
    } else if (!(opt.stage_chunk > 0 && reduce_staged(r, accs, opt, up))) {
      reduce_in_loops(r, accs, opt.reduce_split);
    }
    in_top_reduce_ = false;
    for (auto& [acc, ctx] : accs) top_acc_[{r, ctx.key()}] = acc;
    for (int64_t a : r->arg) name += "_" + std::to_string(r->src[0]->shape[a]);
  };

  // A grouped reduction leaves the result with every lane; the first one stores it (in a row
  // kernel, every lane stores its own elements of the row).
  std::vector<IndexBound> gate;
  if (reduce_lane_) add_bound(gate, {reduce_lane_, 0, 1});
  auto store = [&](size_t o, const Ctx& ctx, int value) {
    Inst st{IOp::Store, values[o]->dtype};
    st.src = {value};
    st.buffer = static_cast<int>(o);
    st.index = flat_index(ctx, values[o]->shape);
    if (!(spread_rows_ && full(o))) st.valid = gate;
    emit(st, false);
  };
  if (values.size() > 1 && !top_reduces_.empty() && all_full && !spread_rows_ && !reads_an_output(values)) {
    // Reductions side by side that read no output: each is stored as soon as it is done, so
    // that its accumulators are free for the next one's.
    for (size_t o = 0; o < values.size(); ++o) {
      for (size_t t = 0; t < top_reduces_.size(); ++t)
        if (reduce_value[t] == o) lower_top(top_reduces_[t]);
      for (auto& ctx : ctxs) store(o, ctx, lower(values[o], ctx));
    }
  } else {
    for (Node* r : top_reduces_) lower_top(r);
    // Every value (and so every load) of the whole tile first, then the stores: a value may
    // read in place the old contents of another output of this kernel, and GCC vectorizes a
    // register tile's loop only when its epilogue's stores come as one group (a matmul with
    // an added tensor ran 15x slower with a store after each register's value).
    if (!(opt.reload_epilogue && !groups && reload_epilogue(ctxs, store))) {
      std::vector<std::vector<int>> lowered(ctxs.size());
      for (size_t c = 0; c < ctxs.size(); ++c)
        for (size_t o = 0; o < values.size(); ++o) lowered[c].push_back(full(o) ? lower(values[o], ctxs[c]) : -1);
      for (size_t c = 0; c < ctxs.size(); ++c)
        for (size_t o = 0; o < values.size(); ++o)
          if (full(o)) store(o, ctxs[c], lowered[c][o]);
    }
    // Outputs of another shape (a row kernel's statistics, matmuls before a reshape), stored
    // where the first value reads them: each once.
    for (size_t o = 1; o < values.size(); ++o) {
      if (full(o)) continue;
      std::vector<std::pair<Node*, Ctx>> reads;
      std::map<std::pair<Node*, std::string>, bool> seen;
      for (auto& ctx : spread_rows_ ? std::vector<Ctx>{ctxs[0]} : ctxs) collect_reduces(value_, ctx, reads, seen, values[o]);
      check(!reads.empty(), "lowering: a kernel stores a value of another shape that its first value does not read");
      for (auto& [n, ctx] : reads) {
        check(ctx.valid.empty() && !ctx.never, "lowering: a value stored beside the first is read under padding");
        store(o, ctx, lower(n, ctx));
      }
    }
  }
  while (cse_.size() > 1) close_range();
  // Many reductions in one kernel (a global norm's partial sums, 57 of them in the gpu preset):
  // fully unrolled, their loops took NVIDIA's compiler 8 s (a 261 KB binary, 44 KB rolled).
  if (top_reduces_.size() > kManyReductions)
    for (Inst& in : k_.insts)
      if (in.op == IOp::Range && in.reduction) in.unroll = 4;

  k_.name = name;
  for (auto& c : k_.name)
    if (c == '-') c = 'm';
  estimate();
  return {std::move(k_), std::move(params_)};
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
bool Lowerer::reload_epilogue(const std::vector<Ctx>& ctxs, const std::function<void(size_t, const Ctx&, int)>& store) {
  if (!more_values_.empty() || top_reduces_.size() != 1 || ctxs.size() < 2) return false;
  Node* r = top_reduces_[0];
  if (r == value_ || r->dtype != value_->dtype || numel(r->shape) != numel(value_->shape) || reads_an_output({value_})) return false;
  std::vector<std::string> keys;  // per register: the context its reduction is read in
  for (auto& ctx : ctxs) {
    std::optional<Ctx> rc = reduce_ctx_for(r, ctx);
    if (!rc || !rc->valid.empty() || rc->never || flat_index(*rc, r->shape)->key != flat_index(ctx, value_->shape)->key) return false;
    keys.push_back(rc->key());
  }
  for (size_t c = 0; c < ctxs.size(); ++c) store(0, ctxs[c], top_acc_.at({r, keys[c]}));
  std::vector<int> values;
  for (size_t c = 0; c < ctxs.size(); ++c) {
    Inst ld{IOp::Load, r->dtype};
    ld.buffer = 0;
    ld.index = flat_index(ctxs[c], value_->shape);
    top_acc_[{r, keys[c]}] = emit(ld, false);
    values.push_back(lower(value_, ctxs[c]));
  }
  for (size_t c = 0; c < ctxs.size(); ++c) store(0, ctxs[c], values[c]);
  return true;
}

bool Lowerer::reads_an_output(const std::vector<Node*>& values) {
  std::set<Buffer*> outputs(params_.begin(), params_.begin() + static_cast<std::ptrdiff_t>(values.size()));
  std::set<Node*> seen;
  std::vector<Node*> stack(values.begin(), values.end());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    if (Buffer* b = input_of_(n)) {
      if (outputs.count(b)) return true;
      continue;
    }
    for (auto& src : n->src) stack.push_back(src.get());
  }
  return false;
}

void Lowerer::open_output_loops(const LoweringOptions& opt, const std::vector<int64_t>& up, const std::vector<int>& order,
                                std::string& name) {
  const Shape& S = value_->shape;
  if (opt.flatten_outer) {
    // One parallel index g over all output loops; each axis is g / stride % extent.
    int64_t total = 1;
    for (int d : order) {
      name += "_" + std::to_string(S[d]);
      total *= S[d] / up[d];
    }
    if (total > 1) {
      int v = new_var("g");
      Expr g = expr_var(v, 0, total - 1);
      int64_t stride = total;
      for (int d : order) {
        int64_t extent = S[d] / up[d];
        stride /= extent;
        if (extent > 1) outer_[d] = expr_mod(expr_div(g, stride), extent), outer_var_[d] = v;
      }
      open_range(v, total, true);
    }
    return;
  }
  int open = 0;
  std::vector<bool> opened(S.size());
  for (size_t d = 0; d < S.size(); ++d) opened[d] = S[d] / up[d] <= 1;
  pack_when_open(opened, up);
  for (int d : order) {
    int64_t extent = S[d] / up[d];
    name += "_" + std::to_string(S[d]);
    if (extent <= 1) continue;
    int v = new_var(open == 0 ? "g" : "i");
    outer_var_[d] = v;
    outer_[d] = expr_var(v, 0, extent - 1);
    open_range(v, extent, open == 0);
    opened[static_cast<size_t>(d)] = true;
    pack_when_open(opened, up);
    ++open;
  }
}

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

std::string Lowerer::memo_key(const Node* n, const Ctx& c) { return "N" + std::to_string(reinterpret_cast<uintptr_t>(n)) + "@" + c.key(); }

Ctx Lowerer::reduce_src_ctx(Node* r, const Ctx& c, const std::vector<Expr>& rvars) {
  Ctx s = c;
  for (size_t i = 0; i < r->arg.size(); ++i) s.idx[r->arg[i]] = rvars[i];
  return s;
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
