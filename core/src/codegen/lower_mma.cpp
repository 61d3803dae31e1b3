// The staged matmul on a matrix unit (LoweringOptions::matrix_unit): each warp of a group
// computes a tile of fragments whose registers are laid out as the unit's MatrixUnit layouts
// say; the two factors pass through local memory as 16-bit pairs packed in 32-bit words.
#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "base/debug.h"
#include "lathe/error.h"
#include "lathe/runtime.h"
#include "lowerer.h"

namespace lathe {
namespace {

bool is_mma_axis(const LoweringOptions& opt, size_t d) {
  return opt.matrix_unit && (static_cast<int>(d) == opt.mma_rows || static_cast<int>(d) == opt.mma_cols);
}

// A float32 value that is exactly a `dtype` value: a cast from it (or from bool or uint8,
// whose values every 16-bit float holds), seen through movement ops.
bool exact_in(Node* n, DType dtype) {
  while (is_movement(n->op)) n = n->src[0].get();
  return n->op == Op::Cast && (n->cast_from == dtype || n->cast_from == DType::Bool || n->cast_from == DType::UInt8);
}

// A lane-dependent fragment coordinate as an index expression.
Expr lane_expr(const LaneTerm& t, const Expr& lane) {
  if (t.scale == 0 || t.mod == 1) return expr_const(0);
  return expr_mul(expr_mod(t.div == 1 ? lane : expr_div(lane, t.div), t.mod), t.scale);
}

Inst u32_const(int64_t v) {
  Inst c{IOp::Const, DType::UInt32};
  c.ivalue = v;
  return c;
}

int mma_parts(Node* factor, DType input) {
  if (exact_in(factor, input)) return 1;
  // Any float32 is the exact sum of three bfloat16 values (8 significant bits each, truncated
  // in turn); a product with an exact factor stays exact, part by part.
  return factor->dtype == DType::Float32 && input == DType::BFloat16 ? 3 : 0;
}

}  // namespace

int matrix_unit_parts(Node* r, DType input) {
  Node* product = r->src[0].get();
  if (r->op != Op::Reduce || r->reduce_op != Op::Add || product->op != Op::Mul || product->dtype != DType::Float32) return 0;
  const int parts = mma_parts(product->src[0].get(), input) * mma_parts(product->src[1].get(), input);
  return parts == 1 || parts == 3 ? parts : 0;  // both split (nine products) stays on the float path
}

// Word rows padded so that a warp's fragment loads fall in 32 banks: stride % 32 == 4 along the
// reduction (rows of step pairs), 8 across it (rows of positions).
static int64_t along_k_stride(int64_t chunk) { return chunk / 2 + 4; }
static int64_t across_k_stride(int64_t tile) { return tile + (40 - tile % 32) % 32; }

int64_t mma_stage_bytes(int64_t tile, int64_t chunk) {
  return 4 * std::max(tile * along_k_stride(chunk), chunk / 2 * across_k_stride(tile));
}

// Along the rows a register is (fragment, accumulator row i), along the columns (fragment,
// accumulator column j): the unit's C layout places it.
int64_t Lowerer::registers_along(const LoweringOptions& opt, size_t d, int64_t up) const {
  if (!is_mma_axis(opt, d)) return up;
  return up * (static_cast<int>(d) == opt.mma_rows ? opt.matrix_unit->c.rows : opt.matrix_unit->c.cols);
}

Expr Lowerer::register_index(const LoweringOptions& opt, size_t d, int64_t up, int64_t c) {
  if (!is_mma_axis(opt, d)) return expr_add(expr_mul(outer_[d], up), c);
  const MatrixUnit& u = *opt.matrix_unit;
  Expr lane = expr_mod(local_id_, u.lanes);
  if (static_cast<int>(d) == opt.mma_rows)
    return expr_add(expr_add(expr_mul(outer_[d], up * u.m), c / u.c.rows * u.m + c % u.c.rows * u.c.row_step), lane_expr(u.c.lane_row, lane));
  return expr_add(expr_add(expr_mul(outer_[d], up * u.n), c / u.c.cols * u.n + c % u.c.cols * u.c.col_step), lane_expr(u.c.lane_col, lane));
}

struct Lowerer::MmaStage {
  Node* x = nullptr;
  OperandUse use;
  int axis = -1;       // the output axis it runs along (rows for A, columns for B)
  int64_t tile = 1;    // its positions in the group's tile
  // Local memory holds words (two 16-bit values, steps 2kp and 2kp + 1). Along the reduction
  // (the factor is contiguous there): [position][kp], else [kp][position]; `stride` words per
  // row, padded so that a warp's fragment loads fall in 32 banks (stride % 32 == 4 along the
  // reduction, 8 across it).
  bool along_k = false;
  int64_t stride = 1;
  int64_t width = 4;   // words a work-item copies at a time (4: 16-byte local stores)
  int parts = 1;       // 1: exact 16-bit values; 3: a float32 factor staged as three bfloat16 parts
  std::vector<int> arrays;  // one per part
};

namespace {

// Where work-item `item`'s copy number `round` of `width` words starts: its reduction word and
// position (neighbouring items take neighbouring runs along the factor's contiguous axis).
std::pair<Expr, Expr> copy_slot(bool along_k, int64_t width, int64_t tile, const Expr& item, int64_t round, int64_t group,
                                int64_t pairs) {
  Expr q = expr_add(item, round * group);
  if (along_k) return {expr_mul(expr_mod(q, pairs / width), width), expr_div(q, pairs / width)};
  return {expr_div(q, tile / width), expr_mul(expr_mod(q, tile / width), width)};
}

}  // namespace

std::vector<int> Lowerer::load_stage(Node* r, const MmaStage& st, const Expr& chunk_start, int64_t chunk) {
  // Each word needs the factor at two steps: 2 * width consecutive values along the reduction,
  // or width consecutive positions at each of the two steps (vector loads either way).
  const int64_t pairs = chunk / 2, group = k_.local_size, rounds = pairs * st.tile / st.width / group;
  std::vector<int> values;
  for (int64_t round = 0; round < rounds; ++round) {
    auto [kp, p] = copy_slot(st.along_k, st.width, st.tile, local_id_, round, group, pairs);
    for (int64_t w = 0; w < st.width; ++w)
      for (int64_t h = 0; h < 2; ++h) {
        Expr kk = st.along_k ? expr_add(expr_mul(expr_add(kp, w), 2), h) : expr_add(expr_mul(kp, 2), h);
        Expr pp = st.along_k ? p : expr_add(p, w);
        Ctx out;
        out.idx = group_base_;
        out.idx[static_cast<size_t>(st.axis)] = expr_add(group_base_[static_cast<size_t>(st.axis)], pp);
        std::optional<Ctx> rc = reduce_ctx_for(r, out);
        check(rc.has_value(), "lowering: a matrix unit's factor lost its reduction");
        values.push_back(lower(st.x, reduce_src_ctx(r, *rc, split_reduce_index(r, expr_add(chunk_start, kk)))));
      }
  }
  return values;
}

void Lowerer::store_stage(const MmaStage& st, const std::vector<int>& values, int64_t chunk) {
  const int64_t pairs = chunk / 2, group = k_.local_size;
  const int high_half = emit(u32_const(0xffff0000), true);
  // A value's parts as bits with zero low halves: an exact 16-bit float in float32 is its own
  // part; a split one is truncated to its high half, and the remainder (exact) split again.
  auto parts_of = [&](int value) {
    std::vector<int> parts;
    int rest = value;
    for (int part = 0; part < st.parts; ++part) {
      int bits = emit(Inst{IOp::Alu, DType::UInt32, Op::Bitcast, {rest}}, false);
      bits = emit(Inst{IOp::Alu, DType::UInt32, Op::And, {bits, high_half}}, false);
      parts.push_back(bits);
      if (part + 1 < st.parts) {
        int taken = emit(Inst{IOp::Alu, DType::Float32, Op::Bitcast, {bits}}, false);
        rest = emit(Inst{IOp::Alu, DType::Float32, Op::Add, {rest, emit(Inst{IOp::Alu, DType::Float32, Op::Neg, {taken}}, false)}}, false);
      }
    }
    return parts;
  };
  for (size_t v = 0; v < values.size(); v += 2) {
    const int64_t round = static_cast<int64_t>(v / 2) / st.width, w = static_cast<int64_t>(v / 2) % st.width;
    auto [kp, p] = copy_slot(st.along_k, st.width, st.tile, local_id_, round, group, pairs);
    std::vector<int> lows = parts_of(values[v]), highs = parts_of(values[v + 1]);
    Expr at = st.along_k ? expr_add(expr_add(expr_mul(p, st.stride), kp), w) : expr_add(expr_add(expr_mul(kp, st.stride), p), w);
    for (int part = 0; part < st.parts; ++part) {
      int low = emit(Inst{IOp::Alu, DType::UInt32, Op::Shr, {lows[static_cast<size_t>(part)], emit(u32_const(16), true)}}, false);
      int high = highs[static_cast<size_t>(part)];
      local_store(st.arrays[static_cast<size_t>(part)], at, emit(Inst{IOp::Alu, DType::UInt32, Op::Or, {low, high}}, false));
    }
  }
}

bool Lowerer::reduce_mma(Node* r, Accs& accs, const LoweringOptions& opt, const std::vector<int64_t>& up) {
  const MatrixUnit& unit = *opt.matrix_unit;
  const int64_t n = reduce_length(r), chunk = opt.stage_chunk, group = k_.local_size;
  // A reduction the unit cannot take runs as loops; LATHE_DEBUG=2 says why.
  auto refuse = [&](const char* why) {
    if (debug_level() >= 2) debug_log().info("{}: reduction of {} steps not on the matrix unit: {}", k_.name, n, why);
    return false;
  };
  if (!matrix_unit_parts(r, unit.input)) return refuse("neither factor is an exact 16-bit value");
  if (chunk % unit.k || n % chunk) return refuse("pass length or unit shape");
  Node* product = r->src[0].get();
  const size_t rows = static_cast<size_t>(opt.mma_rows), cols = static_cast<size_t>(opt.mma_cols);
  const std::vector<int64_t> L = opt.local.empty() ? std::vector<int64_t>(value_->shape.size(), 1) : opt.local;
  // Precondition: one factor runs along the rows only, the other along the columns only.
  std::vector<MmaStage> stages;
  for (auto& src : product->src) {
    MmaStage st{src.get(), probe_operand(r, src.get(), {opt.mma_rows, opt.mma_cols})};
    st.parts = mma_parts(src.get(), unit.input);
    if (!st.use.ok || st.use.axes.size() != 1) return refuse("a factor does not run along exactly one tile axis");
    st.axis = st.use.axes[0];
    const size_t d = static_cast<size_t>(st.axis);
    st.tile = L[d] * up[d] * frag_[d];
    st.along_k = st.use.k_contiguous;
    st.stride = st.along_k ? along_k_stride(chunk) : across_k_stride(st.tile);
    const int64_t words = chunk / 2 * st.tile;
    if (words % group) return refuse("a staged chunk is not a whole number of words per work-item");
    st.width = (words / 4) % group == 0 && (st.along_k ? chunk / 2 : st.tile) % 4 == 0 ? 4 : 1;
    stages.push_back(st);
  }
  if (stages[0].axis == stages[1].axis) return refuse("both factors run along the same axis");
  if (stages[0].axis != opt.mma_rows) std::swap(stages[0], stages[1]);  // A (rows) first, then B
  // Each accumulator's place in its warp's fragments: (fragment along rows, along columns) and
  // which of the fragment's registers.
  const int64_t frag_rows = up[rows], frag_cols = up[cols], regs = unit.c.registers();
  std::vector<int> acc_at(static_cast<size_t>(frag_rows * frag_cols * regs), -1);
  for (auto& [acc, ctx] : accs) {
    auto it = mma_register_.find(output_ctx_.at(reduce_key(r, ctx)).key());
    if (it == mma_register_.end()) return refuse("an accumulator is not a fragment register");
    auto [cr, cc] = it->second;
    size_t at = static_cast<size_t>(((cr / unit.c.rows) * frag_cols + cc / unit.c.cols) * regs + (cr % unit.c.rows) * unit.c.cols +
                                    cc % unit.c.cols);
    if (acc_at[at] >= 0) return refuse("two accumulators share a fragment register");
    acc_at[at] = acc;
  }
  if (std::count(acc_at.begin(), acc_at.end(), -1)) return refuse("a fragment register has no accumulator");

  for (auto& st : stages)
    for (int part = 0; part < st.parts; ++part) st.arrays.push_back(define_local(DType::UInt32, st.along_k ? st.tile * st.stride : chunk / 2 * st.stride));
  // The emulated unit exchanges fragments through local memory: each warp's A and B tiles.
  const int64_t tile_words = (frag_rows * unit.m * stages[0].parts + frag_cols * unit.n * stages[1].parts) * (unit.k / 2);
  const int scratch = unit.native ? -1 : define_local(DType::UInt32, group / unit.lanes * tile_words);
  // The first chunk is staged before the loop; each pass then loads the next one into registers
  // (the chunk after the last wraps to the first, a harmless extra read), multiplies the staged
  // one, and stores what it loaded once every warp is done: the loads' latency hides behind
  // the multiplications.
  for (auto& st : stages) store_stage(st, load_stage(r, st, expr_const(0), chunk), chunk);
  barrier();
  const int64_t passes = n / chunk;
  int cv = new_var("c");
  open_range(cv, passes, false, true);
  Expr next_start = expr_mul(expr_mod(expr_add(expr_var(cv, 0, passes - 1), 1), passes), chunk);
  std::vector<std::vector<int>> next;
  for (auto& st : stages) next.push_back(load_stage(r, st, next_start, chunk));
  int kv = new_var("k");
  open_range(kv, chunk / unit.k, false, true);
  Expr lane = expr_mod(local_id_, unit.lanes);
  Expr pass_pair = expr_mul(expr_var(kv, 0, chunk / unit.k - 1), unit.k / 2);
  // Register w of a fragment: the word at the layout's position and step pair.
  auto word = [&](const MmaStage& st, int part, const FactorLayout& f, int64_t frag, int64_t frag_extent, size_t w) {
    const size_t d = static_cast<size_t>(st.axis);
    Expr p = expr_add(expr_add(expr_mul(local_pos_[d], up[d] * frag_extent), frag * frag_extent + f.position[w]), lane_expr(f.lane_position, lane));
    Expr k = expr_add(expr_add(pass_pair, f.pair[w]), lane_expr(f.lane_pair, lane));
    return local_load(st.arrays[static_cast<size_t>(part)], st.along_k ? expr_add(expr_mul(p, st.stride), k) : expr_add(expr_mul(k, st.stride), p), {},
                      true);
  };
  // Fragments of each part: A's (part, row fragment) in a, B's (part, column fragment) in b.
  std::vector<std::vector<int>> a, b;
  for (int part = 0; part < stages[0].parts; ++part)
    for (int64_t i = 0; i < frag_rows; ++i) {
      a.emplace_back();
      for (size_t w = 0; w < unit.a.position.size(); ++w) a.back().push_back(word(stages[0], part, unit.a, i, unit.m, w));
    }
  for (int part = 0; part < stages[1].parts; ++part)
    for (int64_t j = 0; j < frag_cols; ++j) {
      b.emplace_back();
      for (size_t w = 0; w < unit.b.position.size(); ++w) b.back().push_back(word(stages[1], part, unit.b, j, unit.n, w));
    }
  if (!unit.native) mma_emulated_share(unit, a, b, scratch, tile_words);
  const int64_t a_frags = static_cast<int64_t>(a.size()), b_frags = static_cast<int64_t>(b.size());
  for (int64_t i = 0; i < a_frags; ++i)
    for (int64_t j = 0; j < b_frags; ++j) {
      const int64_t at = (i % frag_rows * frag_cols + j % frag_cols) * regs;
      std::vector<int> acc(acc_at.begin() + at, acc_at.begin() + at + regs);
      if (unit.native) {
        // Sources: the accumulators, then A's and B's registers (ivalue and extent count them).
        Inst mma{IOp::Mma, unit.input, Op::Add, acc};
        for (int w : a[static_cast<size_t>(i)]) mma.src.push_back(w);
        for (int w : b[static_cast<size_t>(j)]) mma.src.push_back(w);
        mma.ivalue = regs;
        mma.extent = unit.a.words();
        emit(mma, false);
      } else {
        mma_emulated(unit, i * unit.m, a_frags * unit.m + j * unit.n, acc, scratch, tile_words);
      }
    }
  if (!unit.native) barrier();
  close_range();
  barrier();
  for (size_t s = 0; s < stages.size(); ++s) store_stage(stages[s], next[s], chunk);
  barrier();
  close_range();
  // Every read of the stages and the scratch came before the loop's last barrier.
  for (auto& st : stages)
    for (int array : st.arrays) release_local(array);
  if (scratch >= 0) release_local(scratch);
  return true;
}

// The emulated unit, first step: each lane stores its fragments' words where the layouts say
// they belong, [position][step pair] in its warp's A tiles (rows) and B tiles (columns).
void Lowerer::mma_emulated_share(const MatrixUnit& unit, const std::vector<std::vector<int>>& a,
                                 const std::vector<std::vector<int>>& b, int scratch, int64_t tile_words) {
  Expr lane = expr_mod(local_id_, unit.lanes);
  Expr warp_base = expr_mul(expr_div(local_id_, unit.lanes), tile_words);
  const int64_t pairs = unit.k / 2;
  auto share = [&](const std::vector<std::vector<int>>& frags, const FactorLayout& f, int64_t extent, int64_t first) {
    for (size_t i = 0; i < frags.size(); ++i)
      for (size_t w = 0; w < frags[i].size(); ++w) {
        Expr p = expr_add(lane_expr(f.lane_position, lane), first + static_cast<int64_t>(i) * extent + f.position[w]);
        Expr q = expr_add(lane_expr(f.lane_pair, lane), f.pair[w]);
        local_store(scratch, expr_add(warp_base, expr_add(expr_mul(p, pairs), q)), frags[i][w]);
      }
  };
  share(a, unit.a, unit.m, 0);
  share(b, unit.b, unit.n, static_cast<int64_t>(a.size()) * unit.m);
  barrier();
}

// Second step, what the instruction computes: the accumulator at (row, column) adds
// A[row][s] * B[s][column] over the unit's k steps, from the shared tiles (`a_first`, `b_first`:
// the fragments' first positions there).
void Lowerer::mma_emulated(const MatrixUnit& unit, int64_t a_first, int64_t b_first, const std::vector<int>& acc, int scratch,
                           int64_t tile_words) {
  Expr lane = expr_mod(local_id_, unit.lanes);
  Expr warp_base = expr_mul(expr_div(local_id_, unit.lanes), tile_words);
  const int64_t pairs = unit.k / 2;
  auto value_at = [&](const Expr& position, int64_t s) {
    int w = local_load(scratch, expr_add(warp_base, expr_add(expr_mul(position, pairs), s / 2)), {}, true);
    int bits = s % 2 ? emit(Inst{IOp::Alu, DType::UInt32, Op::And, {w, emit(u32_const(0xffff0000), true)}}, true)
                     : emit(Inst{IOp::Alu, DType::UInt32, Op::Shl, {w, emit(u32_const(16), true)}}, true);
    return emit(Inst{IOp::Alu, DType::Float32, Op::Bitcast, {bits}}, true);
  };
  for (int i = 0; i < unit.c.rows; ++i)
    for (int j = 0; j < unit.c.cols; ++j) {
      Expr row = expr_add(lane_expr(unit.c.lane_row, lane), a_first + i * unit.c.row_step);
      Expr col = expr_add(lane_expr(unit.c.lane_col, lane), b_first + j * unit.c.col_step);
      int sum = -1;
      for (int64_t s = 0; s < unit.k; ++s) {
        int prod = emit(Inst{IOp::Alu, DType::Float32, Op::Mul, {value_at(row, s), value_at(col, s)}}, false);
        sum = sum < 0 ? prod : emit(Inst{IOp::Alu, DType::Float32, Op::Add, {sum, prod}}, false);
      }
      emit(Inst{IOp::AccUpdate, DType::Float32, Op::Add, {acc[static_cast<size_t>(i * unit.c.cols + j)], sum}}, false);
    }
}

}  // namespace lathe
