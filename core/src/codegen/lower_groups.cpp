// The work-group forms of a kernel (devices with DeviceInfo::max_local_size > 1): output tiles
// spread over the work-items of a group, reductions split between lanes of a group and
// combined through local memory, and matmul factors staged in local memory chunk by chunk.
#include <algorithm>
#include <optional>

#include "lathe/error.h"
#include "lowerer.h"

namespace lathe {
namespace {

Expr minus(const Expr& a, const Expr& b) { return expr_add(a, expr_mul(b, -1)); }

}  // namespace

void Lowerer::open_groups(const LoweringOptions& opt, const std::vector<int64_t>& up, const std::vector<int>& order,
                          std::string& name) {
  const Shape& S = value_->shape;
  const size_t nd = S.size();
  std::vector<int64_t> L = opt.local.empty() ? std::vector<int64_t>(nd, 1) : opt.local;
  // With a matrix unit a work-item of `local` is a warp, and one of `upcast` a fragment.
  frag_.assign(nd, 1);
  int64_t warp = 1;
  if (opt.matrix_unit) {
    frag_[static_cast<size_t>(opt.mma_rows)] = opt.matrix_unit->m;
    frag_[static_cast<size_t>(opt.mma_cols)] = opt.matrix_unit->n;
    warp = opt.matrix_unit->lanes;
  }
  // Groups along each axis; a row kernel's group covers its last axis with its reduction lanes.
  auto extent_of = [&](size_t d) { return spread_rows_ && d == nd - 1 ? 1 : S[d] / (up[d] * L[d] * frag_[d]); };
  int64_t groups = 1;
  local_outputs_ = 1;
  for (size_t d = 0; d < nd; ++d) {
    name += "_" + std::to_string(S[d]);
    groups *= extent_of(d);
    local_outputs_ *= L[d];
  }
  const int64_t lanes = opt.group_reduce;
  const int64_t local_size = local_outputs_ * lanes * warp;
  int gv = new_var("gid"), lv = new_var("lid");
  for (auto [v, id, extent] : {std::tuple{gv, SpecialId::GroupId, groups}, {lv, SpecialId::LocalId, local_size}}) {
    Inst sp{IOp::Special};
    sp.var = v;
    sp.special = id;
    sp.extent = extent;
    emit(sp, false);
  }
  Expr g = expr_var(gv, 0, groups - 1);
  local_id_ = expr_var(lv, 0, local_size - 1);
  // Output lanes vary fastest within a group (coalesced stores), reduction lanes slowest; a
  // warp's lanes share one output position.
  local_out_ = warp > 1 ? expr_div(local_id_, warp) : expr_mod(local_id_, local_outputs_);
  if (lanes > 1) reduce_lane_ = expr_div(local_id_, local_outputs_);
  group_base_.assign(nd, expr_const(0));
  local_pos_.assign(nd, expr_const(0));
  int64_t gstride = groups, lstride = local_outputs_;
  for (int d : order) {
    int64_t extent = extent_of(static_cast<size_t>(d));
    gstride /= extent;
    lstride /= L[d];
    Expr gp = extent > 1 ? expr_mod(expr_div(g, gstride), extent) : expr_const(0);
    Expr lp = L[d] > 1 ? expr_mod(expr_div(local_out_, lstride), L[d]) : expr_const(0);
    group_base_[d] = expr_mul(gp, L[d] * up[d] * frag_[d]);
    local_pos_[d] = lp;
    outer_[d] = expr_add(expr_mul(gp, L[d]), lp);
  }
  k_.global_size = groups * local_size;
  k_.local_size = local_size;
}

std::vector<Expr> Lowerer::split_reduce_index(Node* r, const Expr& k) {
  std::vector<Expr> out(r->arg.size());
  int64_t stride = 1;
  for (size_t i = r->arg.size(); i-- > 0;) {
    int64_t extent = r->src[0]->shape[r->arg[i]];
    out[i] = i == 0 ? expr_div(k, stride) : expr_mod(expr_div(k, stride), extent);
    stride *= extent;
  }
  return out;
}

int Lowerer::define_local(DType dtype, int64_t elements) {
  // An array an earlier reduction of this kernel is done with, when one is large enough: the
  // outputs of a multi-output kernel run one after another, and their stages would otherwise
  // add up past the device's local memory.
  for (size_t i = 0; i < free_locals_.size(); ++i) {
    const int array = free_locals_[i];
    if (local_dtypes_[static_cast<size_t>(array)] == dtype && local_extents_[static_cast<size_t>(array)] >= elements) {
      free_locals_.erase(free_locals_.begin() + static_cast<std::ptrdiff_t>(i));
      return array;
    }
  }
  Inst in{IOp::DefineLocal, dtype};
  in.buffer = static_cast<int>(local_dtypes_.size());
  in.extent = elements;
  local_dtypes_.push_back(dtype);
  local_extents_.push_back(elements);
  emit(in, false);
  return in.buffer;
}

void Lowerer::release_local(int array) { free_locals_.push_back(array); }

int Lowerer::local_load(int array, const Expr& index, std::vector<IndexBound> valid, bool cse) {
  Inst ld{IOp::Load, local_dtypes_[array]};
  ld.buffer = array;
  ld.local = true;
  ld.index = index;
  ld.valid = std::move(valid);
  return emit(ld, cse);
}

void Lowerer::local_store(int array, const Expr& index, int value, std::vector<IndexBound> valid) {
  Inst st{IOp::Store, local_dtypes_[array]};
  st.buffer = array;
  st.local = true;
  st.index = index;
  st.src = {value};
  st.valid = std::move(valid);
  emit(st, false);
}

void Lowerer::barrier() { emit(Inst{IOp::Barrier}, false); }

void Lowerer::reduce_grouped(Node* r, Accs& accs, int64_t lanes, int64_t split) {
  const int64_t n = reduce_length(r);
  check(n % lanes == 0, "lowering: " + std::to_string(lanes) + " reduction lanes do not divide " + std::to_string(n));
  if (split < 1 || n % (lanes * split)) split = 1;
  const Op combine = r->reduce_op == Op::Add ? Op::Add : Op::Max;
  // Lane l takes iterations l, l + lanes, l + 2*lanes, ...: neighbouring lanes read
  // neighbouring elements when the reduced axis is contiguous. With `split`, each loop step
  // takes `split` of them into as many partial accumulators (independent chains, and nested
  // reductions computed side by side for all of them).
  std::vector<std::vector<int>> partial(accs.size());
  for (size_t a = 0; a < accs.size(); ++a) {
    partial[a].push_back(accs[a].first);
    const Inst init = k_.insts[accs[a].first];  // a copy: emit() may move the instructions
    for (int64_t u = 1; u < split; ++u) partial[a].push_back(emit(init, false));
  }
  int jv = new_var("r");
  open_range(jv, n / (lanes * split), false, true);
  std::vector<Ctx> srcs;
  for (auto& [acc, ctx] : accs)
    for (int64_t u = 0; u < split; ++u) {
      Expr step = expr_add(expr_mul(expr_var(jv, 0, n / (lanes * split) - 1), split), u);
      srcs.push_back(reduce_src_ctx(r, ctx, split_reduce_index(r, expr_add(expr_mul(step, lanes), reduce_lane_))));
    }
  lower_nested_together(r->src[0].get(), srcs);
  for (size_t a = 0; a < accs.size(); ++a)
    for (int64_t u = 0; u < split; ++u) {
      int v = lower(r->src[0].get(), srcs[a * static_cast<size_t>(split) + static_cast<size_t>(u)]);
      emit(Inst{IOp::AccUpdate, r->dtype, r->reduce_op, {partial[a][static_cast<size_t>(u)], v}}, false);
    }
  close_range();
  for (size_t a = 0; a < accs.size(); ++a) {
    int value = partial[a][0];
    for (int64_t u = 1; u < split; ++u) value = emit(Inst{IOp::Alu, r->dtype, combine, {value, partial[a][static_cast<size_t>(u)]}}, false);
    accs[a].first = value;
  }
  // Combine the lanes' partial results: a tree in local memory, half the lanes active per step.
  std::vector<int> arrays;
  for (auto& [acc, ctx] : accs) {
    arrays.push_back(define_local(r->dtype, k_.local_size));
    local_store(arrays.back(), local_id_, acc);
  }
  barrier();
  for (int64_t step = lanes / 2; step >= 1; step /= 2) {
    std::vector<IndexBound> active;
    add_bound(active, {reduce_lane_, 0, step});
    for (int a : arrays) {
      int own = local_load(a, local_id_, {}, false);
      int other = local_load(a, expr_add(local_id_, step * local_outputs_), active, false);
      int combined = emit(Inst{IOp::Alu, r->dtype, combine, {own, other}}, false);
      local_store(a, local_id_, combined, active);
    }
    barrier();
  }
  for (size_t i = 0; i < accs.size(); ++i) accs[i].first = local_load(arrays[i], local_out_, {}, false);
}

Lowerer::OperandUse Lowerer::probe_operand(Node* r, Node* operand, const std::vector<int>& tile_axes) {
  // Lower the operand once over fresh variables for the output axes and the reduction index,
  // read off its loads, then roll everything back.
  const size_t mark = k_.insts.size(), vars = k_.var_names.size();
  auto saved_cse = cse_;
  const Shape& S = value_->shape;
  Ctx probe;
  std::vector<int> axis_var(S.size(), -1);
  for (size_t d = 0; d < S.size(); ++d) {
    axis_var[d] = new_var("p");
    probe.idx.push_back(expr_var(axis_var[d], 0, S[d] - 1));
  }
  int kv = new_var("p");
  OperandUse use;
  if (std::optional<Ctx> rc = reduce_ctx_for(r, probe)) {
    use.ok = true;
    lower(operand, reduce_src_ctx(r, *rc, split_reduce_index(r, expr_var(kv, 0, reduce_length(r) - 1))));
    for (int d : tile_axes) {
      bool depends = false;
      for (size_t i = mark; i < k_.insts.size(); ++i) {
        const Inst& in = k_.insts[i];
        if (in.op == IOp::Load) depends |= expr_depends_on(in.index, axis_var[d]);
        if (in.op == IOp::Load || in.op == IOp::Const)
          for (auto& b : in.valid) depends |= expr_depends_on(b.e, axis_var[d]);
      }
      if (depends) use.axes.push_back(d);
    }
    for (size_t i = mark; i < k_.insts.size(); ++i)
      if (k_.insts[i].op == IOp::Load && expr_coefficient(k_.insts[i].index, kv) == 1) use.k_contiguous = true;
  }
  k_.insts.resize(mark);
  k_.var_names.resize(vars);
  cse_ = std::move(saved_cse);
  return use;
}

bool Lowerer::reduce_staged(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up) {
  Node* product = r->src[0].get();
  const int64_t n = reduce_length(r), chunk = opt.stage_chunk, group = k_.local_size;
  if (product->op != Op::Mul || r->reduce_op != Op::Add || product->dtype != DType::Float32 || n % chunk || opt.local.empty())
    return false;
  const size_t nd = value_->shape.size();
  std::vector<int> tile_axes;
  std::vector<int64_t> T(nd, 1);
  for (size_t d = 0; d < nd; ++d) {
    T[d] = opt.local[d] * up[d];
    if (T[d] > 1) tile_axes.push_back(static_cast<int>(d));
  }
  // Each factor's block for one chunk: [chunk][its tile axes], rows padded when the copy
  // walks along the chunk (fewer bank conflicts on the transposing stores).
  struct Stage {
    Node* x;
    OperandUse use;
    int64_t tile = 1, row = 1;
    int array = -1;
  };
  std::vector<Stage> stages;
  for (auto& src : product->src) {
    Stage st{src.get(), probe_operand(r, src.get(), tile_axes)};
    for (int d : st.use.axes) st.tile *= T[d];
    st.row = st.tile + (st.use.k_contiguous && st.tile > 1 ? 4 : 0);
    if (!st.use.ok || (chunk * st.tile) % group) return false;
    stages.push_back(st);
  }
  for (auto& st : stages) st.array = define_local(DType::Float32, chunk * st.row);

  int cv = new_var("c");
  open_range(cv, n / chunk, false, true);
  Expr chunk_start = expr_mul(expr_var(cv, 0, n / chunk - 1), chunk);
  for (auto& st : stages) {
    // The group copies the block cooperatively, each work-item `width` neighbouring elements
    // at a time (along the chunk when the factor is contiguous there: vector loads).
    const int64_t per_item = chunk * st.tile / group, fast = st.use.k_contiguous ? chunk : st.tile;
    const int64_t width = per_item % 4 == 0 && fast % 4 == 0 ? 4 : 1;
    const int64_t rounds = per_item / width;
    // A factor computed by a nested reduction takes all its rounds at once: the rounds' rows
    // and the width's neighbours form one register tile of nested dot products (lowered
    // together below), each operand row loaded once for all of them.
    const bool tile_rounds = rounds > 1 && computes_reduction(st.x, input_of_);
    Expr round = expr_const(0);
    if (rounds > 1 && !tile_rounds) {
      int jv = new_var("j");
      open_range(jv, rounds, false);
      round = expr_var(jv, 0, rounds - 1);
    }
    std::vector<Ctx> srcs;
    std::vector<Expr> slots;
    for (int64_t e = 0; e < (tile_rounds ? rounds : 1) * width; ++e) {
      const int64_t v = e % width;
      Expr slot = expr_mul(expr_add(expr_mul(tile_rounds ? expr_const(e / width) : round, group), local_id_), width);
      Expr kk = st.use.k_contiguous ? expr_add(expr_mod(slot, chunk), v) : expr_div(slot, st.tile);
      Expr tb = st.use.k_contiguous ? expr_div(slot, chunk) : expr_add(expr_mod(slot, st.tile), v);
      Ctx out;  // the output element whose factor this is, as the output sees it
      int64_t stride = st.tile;
      out.idx = group_base_;
      for (int d : st.use.axes) {
        stride /= T[d];
        out.idx[d] = expr_add(group_base_[d], expr_mod(expr_div(tb, stride), T[d]));
      }
      std::optional<Ctx> rc = reduce_ctx_for(r, out);
      check(rc.has_value(), "lowering: staged factor lost its reduction");
      srcs.push_back(reduce_src_ctx(r, *rc, split_reduce_index(r, expr_add(chunk_start, kk))));
      slots.push_back(expr_add(expr_mul(kk, st.row), tb));
    }
    lower_nested_together(st.x, srcs);  // a factor computed by a reduction (recomputed scores)
    for (size_t v = 0; v < srcs.size(); ++v) local_store(st.array, slots[v], lower(st.x, srcs[v]));
    if (rounds > 1 && !tile_rounds) close_range();
  }
  barrier();
  int kv = new_var("k");
  open_range(kv, chunk, false, true);
  Expr kk = expr_var(kv, 0, chunk - 1);
  for (auto& [acc, ctx] : accs) {
    const Ctx& out = output_ctx_.at(reduce_key(r, ctx));
    std::vector<int> factors;
    for (auto& st : stages) {
      Expr offset = expr_const(0);
      int64_t stride = st.tile;
      for (int d : st.use.axes) {
        stride /= T[d];
        offset = expr_add(offset, expr_mul(minus(out.idx[d], group_base_[d]), stride));
      }
      factors.push_back(local_load(st.array, expr_add(expr_mul(kk, st.row), offset), {}, true));
    }
    int v = emit(Inst{IOp::Alu, DType::Float32, Op::Mul, factors}, true);
    emit(Inst{IOp::AccUpdate, r->dtype, Op::Add, {acc, v}}, false);
  }
  close_range();
  barrier();
  close_range();
  for (auto& st : stages) release_local(st.array);  // the loop's last barrier follows its last read
  return true;
}

}  // namespace lathe
