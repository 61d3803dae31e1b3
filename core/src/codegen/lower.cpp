// Lowering a kernel: output loops and register tiles, reductions first, then the epilogue and
// the stores (the run, and the loops-form choices it makes).
#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "base/debug.h"
#include "lathe/runtime.h"
#include "lathe/error.h"
#include "lowerer.h"
#include "online_softmax.h"

namespace lathe {

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
  const bool groups = !opt.local.empty() || opt.group_reduce > 1 || opt.matrix_unit;
  spread_rows_ = opt.spread_rows;
  check(!spread_rows_ || (opt.group_reduce > 1 && nd > 0 && S[nd - 1] == opt.group_reduce * up[nd - 1]),
        "lowering: a row kernel's lanes times its upcast must cover the last axis");
  std::string name = "E";
  outer_.assign(nd, expr_const(0));
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
      for (int64_t u = 0; u < registers_along(opt, d, up[d]); ++u) {
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
                                                    : register_index(opt, d, up[d], c[d]));
    ctxs.push_back(ctx);
    if (opt.matrix_unit) mma_register_[ctx.key()] = {c[static_cast<size_t>(opt.mma_rows)], c[static_cast<size_t>(opt.mma_cols)]};
  }

  // Reductions at the top of the expression run first, one loop nest each, every tile
  // register accumulating inside it; the epilogue then reads the accumulators. Outputs of
  // another shape are found inside the first value, which computes them.
  std::vector<Node*> values = {value_};
  values.insert(values.end(), more_values_.begin(), more_values_.end());
  auto full = [&](size_t o) { return values[o]->shape == S; };
  bool all_full = true;
  for (size_t o = 0; o < values.size(); ++o) all_full &= full(o);
  std::vector<size_t> value_of;  // per entry of tops_: the value it was found in first
  std::map<std::pair<Node*, std::string>, bool> seen;
  for (auto& ctx : ctxs) {
    size_t before = tops_.size();
    for (size_t o = 0; o < values.size(); ++o) {
      if (full(o)) collect_reads(values[o], ctx, input_of_, tops_, seen);
      value_of.resize(tops_.size(), o);
    }
    for (size_t i = before; i < tops_.size(); ++i) output_ctx_[reduce_key(tops_[i].first, tops_[i].second)] = ctx;
  }
  std::vector<size_t> reduce_value;  // per top reduction: the value that reads it first
  for (size_t t = 0; t < tops_.size(); ++t)
    if (std::find(top_reduces_.begin(), top_reduces_.end(), tops_[t].first) == top_reduces_.end()) {
      top_reduces_.push_back(tops_[t].first);
      reduce_value.push_back(value_of[t]);
    }
  // A sum that reads a maximum of this kernel through exp2 may run in the maximum's pass.
  for (Node* s : top_reduces_)
    for (Node* m : top_reduces_)
      if (auto rate = online_rate(s, m, input_of_); rate && !online_.count(m)) online_[m] = {s, *rate};
  auto lower_top = [&](Node* r) {
    if (!lowered_tops_.insert(r).second) return;  // a sum done in its maximum's pass
    name[0] = 'R';
    Accs accs = accs_of(r);
    lower_reduction(r, accs, opt, up);
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
    // where the values of the kernel's shape read them (two epilogues may each read one of two
    // matmuls): each once.
    for (size_t o = 1; o < values.size(); ++o) {
      if (full(o)) continue;
      std::vector<std::pair<Node*, Ctx>> reads;
      std::map<std::pair<Node*, std::string>, bool> seen;
      for (size_t f = 0; f < values.size(); ++f)
        if (full(f))
          for (auto& ctx : spread_rows_ ? std::vector<Ctx>{ctxs[0]} : ctxs) collect_reads(values[f], ctx, input_of_, reads, seen, values[o]);
      check(!reads.empty(), [&] { return "lowering: a kernel stores a value of another shape that none of its values of shape " + to_string(S) + " reads (" + to_string(values[o]->shape) + ", " + op_name(values[o]->op) + ")"; });
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

Lowerer::Accs Lowerer::accs_of(Node* r) {
  Accs accs;
  for (auto& [rn, ctx] : tops_)
    if (rn == r) accs.push_back({emit(make_const_acc(r->dtype, reduce_identity(r->reduce_op, r->dtype)), false), ctx});
  return accs;
}

// The forms a top-level reduction takes, tried in order: each checks its precondition and, when
// it holds, lowers the reduction. Loops take any reduction.
void Lowerer::lower_reduction(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up) {
  struct NamedForm {
    const char* name;
    bool (Lowerer::*form)(Node*, Accs&, const LoweringOptions&, const std::vector<int64_t>&);
  };
  static const NamedForm forms[] = {{"online", &Lowerer::form_online}, {"grouped", &Lowerer::form_grouped},
                                    {"packed", &Lowerer::form_packed}, {"matrix unit", &Lowerer::form_mma},
                                    {"staged", &Lowerer::form_staged}, {"loops", &Lowerer::form_loops}};
  for (const NamedForm& f : forms)
    if ((this->*f.form)(r, accs, opt, up)) {
      if (debug_level() >= 3) debug_log().info("reduction of {} steps: {}", reduce_length(r), f.name);
      return;
    }
}

// A maximum and the sum that reads it through exp2, in one pass, when the sum is read at the
// maximum's contexts register by register (not with staged factors).
bool Lowerer::form_online(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>&) {
  auto pair = online_.find(r);
  if (pair == online_.end() || opt.stage_chunk != 0 || lowered_tops_.count(pair->second.first)) return false;
  auto [sum, rate] = pair->second;
  std::vector<std::string> keys_max, keys_sum;
  for (auto& [rn, ctx] : tops_) {
    if (rn == r) keys_max.push_back(ctx.key());
    if (rn == sum) keys_sum.push_back(ctx.key());
  }
  if (keys_max != keys_sum) return false;
  Accs sums = accs_of(sum);
  reduce_online(r, sum, accs, sums, rate, opt.group_reduce, opt.reduce_split);
  lowered_tops_.insert(sum);
  for (auto& [acc, ctx] : sums) top_acc_[{sum, ctx.key()}] = acc;
  return true;
}

bool Lowerer::form_grouped(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>&) {
  if (opt.group_reduce <= 1) return false;
  reduce_grouped(r, accs, opt.group_reduce, opt.reduce_split);
  return true;
}

bool Lowerer::form_packed(Node* r, Accs& accs, const LoweringOptions&, const std::vector<int64_t>& up) {
  if (r != pack_.reduce || pack_.array < 0) return false;
  reduce_packed(r, accs, up);
  return true;
}

bool Lowerer::form_mma(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up) {
  return opt.stage_chunk > 0 && opt.matrix_unit && reduce_mma(r, accs, opt, up);
}

bool Lowerer::form_staged(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up) {
  return opt.stage_chunk > 0 && !opt.matrix_unit && reduce_staged(r, accs, opt, up);
}

bool Lowerer::form_loops(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>&) {
  reduce_in_loops(r, accs, opt.reduce_split);
  return true;
}

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
        if (extent > 1) outer_[d] = expr_mod(expr_div(g, stride), extent);
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
    outer_[d] = expr_var(v, 0, extent - 1);
    open_range(v, extent, open == 0);
    opened[static_cast<size_t>(d)] = true;
    pack_when_open(opened, up);
    ++open;
  }
}

namespace {

// Tile and group factors must divide the output's axes; anything else is refused before lowering.
void check_factors(const Shape& S, const LoweringOptions& options) {
  auto check_each = [&](const std::vector<int64_t>& f, const char* what) {
    if (f.empty()) return;
    check(f.size() == S.size(), std::string("lowering: ") + what + " has the wrong number of axes");
    for (size_t d = 0; d < f.size(); ++d)
      check(f[d] >= 1 && S[d] % f[d] == 0, std::string("lowering: ") + what + " " + std::to_string(f[d]) +
                                               " does not divide axis " + std::to_string(d) + " of " + to_string(S));
  };
  check_each(options.upcast, "upcast");
  check_each(options.local, "local");
  if (!options.local.empty() && !options.upcast.empty())
    for (size_t d = 0; d < S.size(); ++d)
      check(S[d] % (options.local[d] * options.upcast[d]) == 0,
            "lowering: local x upcast does not divide axis " + std::to_string(d) + " of " + to_string(S));
  if (options.matrix_unit) {
    const MatrixUnit& u = *options.matrix_unit;
    for (auto [d, f] : {std::pair{options.mma_rows, u.m}, {options.mma_cols, u.n}}) {
      int64_t tile = f * (options.upcast.empty() ? 1 : options.upcast[d]) * (options.local.empty() ? 1 : options.local[d]);
      check(S[d] % tile == 0, "lowering: a matrix unit's tile of " + std::to_string(tile) + " does not divide axis " +
                                  std::to_string(d) + " of " + to_string(S));
    }
  }
  check(options.group_reduce >= 1 && options.reduce_split >= 1 && options.stage_chunk >= 0,
        "lowering: reduction lanes, partial accumulators and staging chunks must be positive");
}

}  // namespace

LoweredKernel lower_kernel(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of,
                           const LoweringOptions& options) {
  check_factors(value->shape, options);
  return Lowerer(value, output, input_of).run(options);
}

LoweredKernel lower_kernel(const std::vector<std::pair<Node*, Buffer*>>& outputs, const std::function<Buffer*(Node*)>& input_of,
                           const LoweringOptions& options) {
  check(!outputs.empty(), "lowering: a kernel needs an output");
  if (outputs.size() == 1) return lower_kernel(outputs[0].first, outputs[0].second, input_of, options);
  check_factors(outputs[0].first->shape, options);
  Lowerer l(outputs[0].first, outputs[0].second, input_of);
  for (size_t i = 1; i < outputs.size(); ++i) l.add_output(outputs[i].first, outputs[i].second);
  return l.run(options);
}

}  // namespace lathe
