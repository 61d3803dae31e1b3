// Choosing how a kernel maps onto the device: the explicit LoweringOptions, picked by
// heuristics from the shape of the kernel and what the device offers.
#include <algorithm>
#include <numeric>
#include <set>
#include <unordered_set>

#include "lathe/error.h"
#include "lowerer.h"

namespace lathe {
namespace {

// Which output axes reuse operands: an axis earns a register tile when some operand inside
// the reductions does not depend on it (its loads are reused across the tile) while another
// does. Axes are listed innermost first.
struct Reuse {
  std::vector<int> tile_axes;  // reused and dependent
  int contiguous_tile = -1;    // the tile axis along which a dependent operand is contiguous
  int stream_axis = -1;        // an axis along which an operand read at every reduction step is contiguous
};

Reuse analyze_reuse(const Lowerer& trial, const Shape& S) {
  Reuse r;
  // Operands that change with the reduction carry its traffic; one value per output (a row's
  // maximum in a softmax) does not decide how outputs share loads.
  auto per_step = [&](const Expr& e) {
    for (int rv : trial.top_reduce_vars_)
      if (rv >= 0 && expr_coefficient(e, rv) != 0) return true;
    return false;
  };
  for (int d = static_cast<int>(S.size()) - 1; d >= 0; --d) {
    int v = trial.outer_var_[d];
    if (v < 0) continue;
    bool reused = false, contiguous = false, dependent = false, streamed = false;
    for (auto& e : trial.reduce_loads_) {
      int64_t coef = expr_coefficient(e, v);
      reused |= coef == 0;
      dependent |= coef != 0;
      contiguous |= coef == 1;
      streamed |= coef == 1 && per_step(e);
    }
    if (streamed && r.stream_axis < 0) r.stream_axis = d;
    if (!reused || !dependent) continue;
    if (contiguous && r.contiguous_tile < 0) r.contiguous_tile = d;
    r.tile_axes.push_back(d);
  }
  return r;
}

// Two output axes of a matmul: one operand runs along the first and not the second, another
// along the second and not the first, so a tile over both reuses each operand's loads. A
// reduction whose only reused operand is a broadcast vector (a norm's weight, a mask shared
// by heads) has reused axes but no such pair: it is a row reduction, not a matmul.
std::pair<int, int> matmul_axes(const Lowerer& trial, const Reuse& reuse) {
  auto along = [&](const Expr& e, int d) { return expr_coefficient(e, trial.outer_var_[d]) != 0; };
  for (size_t i = 0; i < reuse.tile_axes.size(); ++i)
    for (size_t j = i + 1; j < reuse.tile_axes.size(); ++j) {
      int n = reuse.tile_axes[i], m = reuse.tile_axes[j];
      bool first = false, second = false;
      for (auto& e : trial.reduce_loads_) {
        first |= along(e, n) && !along(e, m);
        second |= along(e, m) && !along(e, n);
      }
      if (first && second) return {n, m};
    }
  return {-1, -1};
}

// Whether a kernel computes a select, comparison, maximum or transcendental after its
// reduction loops.
bool selecting_epilogue(const Kernel& k) {
  int open_reductions = 0;
  bool after = false;
  std::vector<bool> open;
  for (auto& in : k.insts) {
    if (in.op == IOp::Range) {
      open.push_back(in.reduction);
      open_reductions += in.reduction;
    } else if (in.op == IOp::EndRange && !open.empty()) {
      open_reductions -= open.back();
      after |= open.back();
      open.pop_back();
    } else if (after && open_reductions == 0 && in.op == IOp::Alu) {
      switch (in.alu) {
        case Op::Where: case Op::CmpLt: case Op::CmpNe: case Op::Max: case Op::Exp2: case Op::Log2: case Op::Sin: return true;
        default: break;
      }
    }
  }
  return false;
}

// Below this many operations a matmul's operands stay in cache anyway and the copy of a
// packed strip is not repaid.
constexpr int64_t kPackOps = int64_t{1} << 24;
// Reductions up to this length are short for a packed matmul's tile (see cpu_options).
constexpr int64_t kShortPacked = 512;
// The loop devices' table (docs/codegen.md says which measurement chose each).
constexpr int64_t kMaxUnrolledBody = 4096;        // instructions the C compiler digests quickly
constexpr int64_t kBigTileOps = int64_t{1} << 26;  // kernels large enough to pay for big tiles' compile time
constexpr int64_t kBigTile = 256, kSmallTile = 16; // registers of a tile on such kernels, and on the others
constexpr int64_t kWideVectors = 2;               // vectors along the wide axis of a tile
constexpr int64_t kShortPackedVectors = 4;        // ... of a packed tile over a short reduction
constexpr int64_t kRowsManyRegisters = 8;         // rows of a tile with 32 vector registers
constexpr int64_t kRowsFewRegisters = 4;          // rows with 16, of a packed short tile, or of dot products
constexpr int64_t kPartialSums = 16;              // partial accumulators along a contiguous run (at most)

LoweringOptions cpu_options(Node* value, const std::function<Buffer*(Node*)>& input_of, const DeviceInfo& device) {
  const Shape& S = value->shape;
  LoweringOptions opt;
  opt.flatten_outer = device.parallel_all_outer_loops;
  // Register tiles in vectors: two wide and eight rows fill AVX-512's 32 registers of 16 floats;
  // with 16 registers of 8 floats (AVX2) a tile of four rows stays in registers (docs/codegen.md).
  const int64_t vec = device.vector_floats > 0 ? device.vector_floats : 16;
  const bool many_registers = vec >= 16;
  opt.upcast.assign(S.size(), 1);
  Buffer probe(nullptr, value->dtype, numel(S));
  Lowerer trial(value, &probe, input_of);
  LoweredKernel plain = trial.run({});
  const int64_t body = static_cast<int64_t>(plain.kernel.insts.size());
  // Big tiles pay for their compile time (seconds for a 256-register tile) only on big
  // kernels; below ~64M operations a 16-register tile is as fast in practice.
  const int64_t max_tile = plain.kernel.ops_estimate >= kBigTileOps ? kBigTile : kSmallTile;
  if (trial.reduce_loads_.empty()) return opt;
  // The axis where a dependent operand is contiguous gets the wide factor, which the C
  // compiler turns into vector loads and FMAs.
  Reuse reuse = analyze_reuse(trial, S);
  // Without a matmul pair the reused operand is a broadcast (a mask shared by heads, a norm's
  // weight): tiles over the other axes would read rows far apart, one scalar chain each, so
  // only a tile along an output axis where an operand read at every step is contiguous is
  // kept. A value read once per output (a softmax row's maximum) does not count: tiling rows
  // for it left the sum of exponentials scalar, where along its run it vectorizes (softmax
  // 8192x1024 on the 2-core machine: 10.8 -> 24 GB/s). The reduction splits along its run.
  const bool matmul = matmul_axes(trial, reuse).first >= 0;
  if (!matmul) {
    reuse.tile_axes.clear();
    reuse.contiguous_tile = reuse.contiguous_tile == reuse.stream_axis ? reuse.contiguous_tile : -1;
    if (reuse.contiguous_tile >= 0) reuse.tile_axes.push_back(reuse.contiguous_tile);
  }
  int wide = reuse.contiguous_tile, narrow = -1;
  for (int d : reuse.tile_axes)
    if (d != wide && narrow < 0) narrow = d;
  // Unrolled tiles multiply the body: keep the kernel's size within a budget the C compiler
  // digests quickly (about 4k instructions).
  auto pick = [&](int d, std::initializer_list<int64_t> factors, int64_t other) {
    if (d < 0) return;
    for (int64_t f : factors)
      if (S[d] % f == 0 && S[d] >= f && body * f * other <= kMaxUnrolledBody && f * other <= max_tile) {
        opt.upcast[d] = f;
        return;
      }
  };
  // 32x8 (the wide axis outermost) keeps 256 accumulators in vector registers and reuses a
  // column strip of the contiguous operand across the rows of the tile: measured at about
  // 4x a 16x4 tile at 2048^3 on a 2-core AVX-512 machine.
  // Without reuse, a reduction whose per-step operand is contiguous along an output axis (a
  // column sum) still gains from computing 16 neighbouring outputs at once: vector loads.
  if (wide < 0 && narrow < 0) wide = reuse.stream_axis;
  // A large matmul whose operands both run along the reduction (x @ W^T) packs the innermost
  // axis's operand into a strip instead: the copy transposes it, and the tile is a plain one.
  const bool packable = matmul && trial.top_reduces_.size() == 1 && plain.kernel.ops_estimate >= kPackOps;
  if (wide < 0 && narrow >= 0 && packable) {
    wide = reuse.tile_axes[0];
    narrow = reuse.tile_axes[1];
  }
  // A packed matmul over a short reduction (the training presets' projections) pays more for
  // each tile's start and end: 4x64 tiles (four vectors wide) beat 8x32 below kShortPacked
  // steps and lose above it (docs/codegen.md).
  // The same when the rows' operand is stored along the rows rather than the reduction (a
  // weight gradient x^T dy): each strip streams that operand whole, so wider strips mean fewer
  // passes over it.
  bool rows_along_rows = false;
  if (narrow >= 0)
    for (auto& e : trial.reduce_loads_) rows_along_rows |= expr_coefficient(e, trial.outer_var_[narrow]) == 1;
  const bool short_packed = packable && (reduce_length(trial.top_reduces_[0]) <= kShortPacked || rows_along_rows);
  if (short_packed && many_registers) pick(wide, {kShortPackedVectors * vec, kWideVectors * vec, vec, 8, 4}, 1);
  else pick(wide, {kWideVectors * vec, vec, 8, 4}, 1);
  // No operand contiguous along an output axis (x @ W^T with W stored [out, in]: both run along
  // the reduction): four dot products at a time, vectorized along the reduction itself.
  const bool dot_products = wide < 0 && narrow >= 0;
  const bool four_rows = dot_products || short_packed || !many_registers;
  pick(narrow, four_rows ? std::initializer_list<int64_t>{kRowsFewRegisters, 2} : std::initializer_list<int64_t>{kRowsManyRegisters, 4, 2},
       wide < 0 ? 1 : opt.upcast[wide]);
  if (dot_products && narrow >= 0)  // and four along the other reused axis: a 4x4 block of dot products
    for (int d : reuse.tile_axes)
      if (d != narrow) {
        pick(d, {4, 2}, opt.upcast[narrow]);
        break;
      }
  if (wide >= 0 && opt.upcast[wide] > 1) {
    opt.loop_order.push_back(wide);
    for (int d = 0; d < static_cast<int>(S.size()); ++d)
      if (d != wide) opt.loop_order.push_back(d);
  }
  // A large matmul reads the wide axis's operand strip from a packed copy (see plan_pack):
  // a strip read in place walks one row of memory per reduction step, each on its own page.
  if (packable && wide >= 0 && opt.upcast[wide] >= vec)
    opt.stage_chunk = reduce_length(trial.top_reduces_[0]);
  // A reduction over a contiguous run (row sums, norms, softmax, dot products of a small
  // tile) gets 16 independent partial accumulators: one vector register instead of a serial
  // chain of scalar adds or NaN-propagating maxes.
  int64_t tile = 1;
  for (int64_t u : opt.upcast) tile *= u;
  // Sums, and float32 maxima (on integer keys: GCC 12 does not vectorize NaN-propagating
  // float selects); other maxima stay single chains.
  bool contiguous_run = !trial.top_reduce_vars_.empty();
  for (Node* r : trial.top_reduces_) contiguous_run &= r->reduce_op == Op::Add || r->dtype == DType::Float32;
  for (int v : trial.top_reduce_vars_) {
    bool any = false;
    for (auto& e : trial.reduce_loads_) any |= v >= 0 && expr_coefficient(e, v) == 1;
    contiguous_run &= any;
  }
  if (contiguous_run && tile <= 8 && !dot_products) {
    int64_t last = 0;
    for (Node* r : trial.top_reduces_) last = std::gcd(last, r->src[0]->shape[r->arg.back()]);
    for (int64_t split : {kPartialSums, kPartialSums / 2, kPartialSums / 4})
      if (last % split == 0 && last >= 2 * split && body * split <= kMaxUnrolledBody) {
        opt.reduce_split = split;
        break;
      }
  }
  // A register tile whose epilogue selects or calls a transcendental (relu(a @ b)) stays scalar
  // in GCC unless the reductions are stored first and the epilogue reads them back: 12.4 ms
  // against 1.0 ms at 2048x384x128.
  opt.reload_epilogue = tile > 1 && !dot_products && selecting_epilogue(plain.kernel);
  return opt;
}

// Whether a reduction computes another one per step (attention scores recomputed inside a
// softmax's maximum or sum) rather than reading it from memory.
bool has_nested_reduction(Node* r, const std::function<Buffer*(Node*)>& input_of) {
  return computes_reduction(r->src[0].get(), input_of);
}


// The work-group devices' table (the measurements are in the comments where each is used).
constexpr int64_t kVectorElements = 4;                // outputs per work-item of an elementwise kernel (128-bit access)
constexpr int64_t kVectorKernelMin = int64_t{1} << 16;  // elements below which elementwise kernels stay scalar
constexpr int64_t kNestedRows = 16, kNestedRowsFew = 4;  // rows per work-item of a reduction over recomputed scores
constexpr int64_t kNestedLanes = 64, kNestedSplit = 4;   // its lanes, and keys per lane step
constexpr int64_t kGroupLanes = 256, kColumnGroup = 32, kColumnLanes = 8;  // grouped reductions: lanes; outputs and lanes along a contiguous axis
constexpr int64_t kMinLanes = 4;                      // fewer lanes than this: no grouped reduction

// Matrix-unit tiles, largest first: warps and fragments per warp along rows and columns.
// 2 x 4 warps of 4 x 8 fragments (128 x 256 outputs, 128 accumulators a lane) in 64-step
// passes, the list LATHE_SEARCH=2 found for a large bf16 matmul (docs/codegen.md says where).
struct MmaTile {
  int64_t warps_rows, warps_cols, frags_rows, frags_cols;
};
constexpr MmaTile kMmaTiles[] = {{2, 4, 4, 8}, {2, 4, 4, 4}, {2, 2, 4, 4}, {2, 2, 2, 4}, {1, 1, 1, 1}};
constexpr int64_t kMmaChunks[] = {64, 32};  // reduction steps staged per pass, longest that fits

LoweringOptions group_options(Node* value, const std::function<Buffer*(Node*)>& input_of, const DeviceInfo& dev) {
  const Shape& S = value->shape;
  const int nd = static_cast<int>(S.size());
  LoweringOptions opt;
  opt.flatten_outer = true;
  opt.upcast.assign(nd, 1);
  if (int64_t lanes = row_lanes(value, {}, input_of, dev)) {
    // A norm or softmax: one group per row computes its statistics, then the row.
    opt.spread_rows = true;
    opt.group_reduce = lanes;
    opt.upcast[nd - 1] = S[nd - 1] / lanes;
    return opt;
  }
  Buffer probe(nullptr, value->dtype, numel(S));
  Lowerer trial(value, &probe, input_of);
  trial.run({});
  if (trial.top_reduces_.empty()) {
    // Elementwise: four neighbouring outputs per work-item, loaded and stored as vectors.
    if (nd > 0 && S[nd - 1] % kVectorElements == 0 && numel(S) >= kVectorKernelMin) opt.upcast[nd - 1] = kVectorElements;
    return opt;
  }
  bool float_sums = true;
  int64_t length = 0;
  for (Node* r : trial.top_reduces_) {
    float_sums &= r->dtype == DType::Float32;
    length = std::gcd(length, reduce_length(r));
  }
  if (!float_sums) return opt;
  Reuse reuse = analyze_reuse(trial, S);
  auto [n, m] = matmul_axes(trial, reuse);
  bool nested = false;
  for (Node* r : trial.top_reduces_) nested |= has_nested_reduction(r, input_of);
  if (n >= 0 && !dev.matrix_units.empty() && trial.top_reduces_.size() == 1 &&
      matrix_unit_reduction(trial.top_reduces_[0], dev.matrix_units[0].input)) {
    // A matmul of 16-bit factors on a matrix unit: warps of fragments, rows along m.
    const MatrixUnit& u = dev.matrix_units[0];
    for (MmaTile t : kMmaTiles) {
      const int64_t Tr = t.warps_rows * t.frags_rows * u.m, Tc = t.warps_cols * t.frags_cols * u.n;
      const int64_t items = t.warps_rows * t.warps_cols * u.lanes;
      if (S[m] % Tr || S[n] % Tc || items > dev.max_local_size) continue;
      if (numel(S) / (Tr * Tc) < dev.compute_units && t.warps_rows * t.frags_rows > 1) continue;  // too few groups
      int64_t chunk = 0;
      for (int64_t c : kMmaChunks)
        if (!chunk && length % c == 0 && mma_stage_bytes(Tr, c) + mma_stage_bytes(Tc, c) <= dev.local_memory_bytes) chunk = c;
      if (!chunk) continue;
      opt.local.assign(nd, 1);
      opt.local[m] = t.warps_rows, opt.local[n] = t.warps_cols;
      opt.upcast[m] = t.frags_rows, opt.upcast[n] = t.frags_cols;
      opt.stage_chunk = chunk;
      opt.matrix_unit = u;
      opt.mma_rows = m, opt.mma_cols = n;
      return opt;
    }
  }
  if (n >= 0) {
    // A matmul: a work-group computes a T x T tile (Ln x Lm work-items, Un x Um registers each;
    // n is the inner axis, along which the output and one factor are contiguous); both factors
    // pass through local memory in chunks of `chunk` iterations. First the 64 x 64 tile of
    // 16 x 8 items with 4 x 8 registers that LATHE_SEARCH found fastest for large float32
    // matmuls on an H100 (35.0 against 30.3 TFLOP/s for 16 x 16 items with 4 x 4 at 4096^3),
    // then square tiles, smaller when there would be fewer groups than compute units.
    struct Tile {
      int64_t Ln, Lm, Un, Um;
    };
    // A factor computed by nested reductions (recomputed attention probabilities times V)
    // does best with tall register tiles, each item computing a 16x4 block of the factor's
    // chunk: 64 x 64 tiles of 4 x 16 items, found by LATHE_SEARCH on an H100 at 1x8x4096x64
    // (forward 1.5 ms against 2.6 ms for 16 x 8 items with 4 x 8; the backward's, with two
    // nested reductions, 3.1-3.3 ms, as fast as anything the search found for them).
    int64_t outputs = numel(S);
    std::vector<Tile> tiles = {Tile{16, 8, 4, 8}, Tile{16, 16, 4, 4}, Tile{8, 8, 4, 4}, Tile{8, 8, 2, 2}};
    if (nested) tiles.insert(tiles.begin(), Tile{16, 4, 4, 16});
    for (Tile t : tiles) {
      const int64_t Tn = t.Ln * t.Un, Tm = t.Lm * t.Um, items = t.Ln * t.Lm;
      if (S[n] % Tn || S[m] % Tm || items > dev.max_local_size) continue;
      if (outputs / (Tn * Tm) < dev.compute_units && t.Un != 2) continue;  // too few groups: smaller tiles
      opt.local.assign(nd, 1);
      opt.local[n] = t.Ln, opt.local[m] = t.Lm;
      opt.upcast[n] = t.Un, opt.upcast[m] = t.Um;
      // A factor computed by a nested reduction (recomputed attention probabilities times V)
      // takes longer chunks: each work-item computes more of its elements as one register
      // tile, sharing their operands' loads (see reduce_staged).
      for (int64_t chunk : nested ? std::vector<int64_t>{64, 32, 16, 8} : std::vector<int64_t>{16, 8})
        if (length % chunk == 0 && (chunk * Tn) % items == 0 && (chunk * Tm) % items == 0 &&
            chunk * (Tn + Tm + 8) * 4 <= dev.local_memory_bytes) {
          opt.stage_chunk = chunk;
          break;
        }
      return opt;
    }
    opt.upcast.assign(nd, 1);  // no tile fits: reduce in groups of lanes like any reduction
  }
  int rows = -1;  // the widest output axis
  for (int d = 0; d < nd; ++d)
    if (S[d] % kNestedRowsFew == 0 && (rows < 0 || S[d] > S[rows])) rows = d;
  if (nested && rows >= 0 && length >= 64) {
    // Scores recomputed inside a reduction over keys: sixteen rows and four keys per
    // work-item and loop step, so that the nested dot products run as a 16x4 register tile
    // (see lower_nested_together): each key element loaded serves sixteen of them, each query
    // element four; 64 lanes per group split the keys. (LATHE_SEARCH on an H100: 1.9 ms
    // against 5.0 ms with four rows, for the attention row statistics at 1x8x4096x64.)
    opt.upcast[rows] = S[rows] % kNestedRows == 0 ? kNestedRows : kNestedRowsFew;
    opt.group_reduce = lanes_for(length, std::min<int64_t>(kNestedLanes, dev.max_local_size), 16);
    if (opt.group_reduce < kMinLanes) opt.group_reduce = 1;
    if (length % (opt.group_reduce * kNestedSplit) == 0) opt.reduce_split = kNestedSplit;
    return opt;
  }
  if (length >= 32) {
    // A reduction without reuse (a row or column sum): a group of lanes splits each output's
    // reduction. Along a contiguous output axis, 32 neighbouring outputs share a group so
    // that its loads stay coalesced.
    int64_t across = 1;
    if (reuse.stream_axis >= 0 && S[reuse.stream_axis] % kColumnGroup == 0) {
      across = kColumnGroup;
      opt.local.assign(nd, 1);
      opt.local[reuse.stream_axis] = across;
    }
    int64_t lanes = lanes_for(length, std::min<int64_t>(across > 1 ? kColumnLanes : kGroupLanes, dev.max_local_size / across), kMinLanes);
    if (lanes >= kMinLanes) opt.group_reduce = lanes;
    else opt.local.clear();
  }
  return opt;
}

}  // namespace


LoweringOptions default_options(Node* value, const std::function<Buffer*(Node*)>& input_of, const DeviceInfo& device) {
  if (device.max_local_size > 1) return group_options(value, input_of, device);
  return cpu_options(value, input_of, device);
}

}  // namespace lathe
