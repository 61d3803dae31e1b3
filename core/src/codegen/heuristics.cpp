// The heuristics: a kernel's action list from its profile (kernel_profile.h) and a table of
// named constants per device class, loop devices and work-group devices.
#include <algorithm>
#include <numeric>

#include <spdlog/spdlog.h>

#include "base/debug.h"
#include "codegen/kernel_profile.h"
#include "codegen/lowerer.h"
#include "codegen/opt.h"
#include "lathe/runtime.h"

namespace lathe {
namespace {

// The actions being chosen for one kernel; list() gives them in the order LATHE_DEBUG=2 prints.
struct Actions {
  explicit Actions(size_t rank) : upcast(rank, 1) {}
  int outer = -1;
  std::vector<int64_t> upcast, local;  // local empty: no Local action
  int64_t group = 1, split = 1, stage = 0;
  bool rows = false, reload = false;
  int mma_rows = -1, mma_cols = -1;

  Opts list() const {
    Opts opts;
    if (outer >= 0) opts.push_back({OptKind::Outer, outer});
    for (size_t d = 0; d < upcast.size(); ++d)
      if (upcast[d] > 1) opts.push_back({OptKind::Upcast, static_cast<int>(d), upcast[d]});
    bool any_local = false;
    for (size_t d = 0; d < local.size(); ++d)
      if (local[d] > 1) opts.push_back({OptKind::Local, static_cast<int>(d), local[d]}), any_local = true;
    if (!local.empty() && !any_local) opts.push_back({OptKind::Local, 0, 1});  // work-groups of one item per output
    if (group > 1) opts.push_back({OptKind::GroupReduce, -1, group});
    if (rows) opts.push_back({OptKind::Rows});
    if (split > 1) opts.push_back({OptKind::SplitReduce, -1, split});
    if (stage > 0) opts.push_back({OptKind::Stage, -1, stage});
    if (reload) opts.push_back({OptKind::Reload});
    if (mma_rows >= 0) opts.push_back({OptKind::MatrixUnit, mma_rows, mma_cols});
    return opts;
  }
};

// Which output axes reuse operands: an axis earns a register tile when some operand inside
// the reductions does not depend on it (its loads are reused across the tile) while another
// does. Axes are listed innermost first.
struct Reuse {
  std::vector<int> tile_axes;  // reused and dependent
  int contiguous_tile = -1;    // the tile axis along which a dependent operand is contiguous
  int stream_axis = -1;        // an axis along which an operand read at every reduction step is contiguous
};

Reuse analyze_reuse(const KernelProfile& p, const Shape& S) {
  Reuse r;
  // Operands that change with the reduction carry its traffic; one value per output (a row's
  // maximum in a softmax) does not decide how outputs share loads.
  auto per_step = [&](const Expr& e) {
    for (int rv : p.innermost_var)
      if (rv >= 0 && expr_coefficient(e, rv) != 0) return true;
    return false;
  };
  for (int d = static_cast<int>(S.size()) - 1; d >= 0; --d) {
    int v = p.axis_var[d];
    if (v < 0) continue;
    bool reused = false, contiguous = false, dependent = false, streamed = false;
    for (auto& e : p.loads) {
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
std::pair<int, int> matmul_axes(const KernelProfile& p, const Reuse& reuse) {
  auto along = [&](const Expr& e, int d) { return expr_coefficient(e, p.axis_var[d]) != 0; };
  for (size_t i = 0; i < reuse.tile_axes.size(); ++i)
    for (size_t j = i + 1; j < reuse.tile_axes.size(); ++j) {
      int n = reuse.tile_axes[i], m = reuse.tile_axes[j];
      bool first = false, second = false;
      for (auto& e : p.loads) {
        first |= along(e, n) && !along(e, m);
        second |= along(e, m) && !along(e, n);
      }
      if (first && second) return {n, m};
    }
  return {-1, -1};
}

// The loop devices' table (docs/codegen.md says which measurement chose each).
constexpr int64_t kPackOps = int64_t{1} << 24;     // below this a matmul's operands stay in cache: no packed strip
constexpr int64_t kShortPacked = 512;              // reductions up to this length are short for a packed tile
constexpr int64_t kMaxUnrolledBody = 4096;         // instructions the C compiler digests quickly
constexpr int64_t kBigTileOps = int64_t{1} << 26;  // kernels large enough to pay for big tiles' compile time
constexpr int64_t kBigTile = 256, kSmallTile = 16; // registers of a tile on such kernels, and on the others
constexpr int64_t kWideVectors = 2;                // vectors along the wide axis of a tile
constexpr int64_t kShortPackedVectors = 4;         // ... of a packed tile over a short reduction
constexpr int64_t kRowsManyRegisters = 8;          // rows of a tile with 32 vector registers
constexpr int64_t kRowsFewRegisters = 4;           // rows with 16, of a packed short tile, or of dot products
constexpr int64_t kPartialSums = 16;               // partial accumulators along a contiguous run (at most)

Opts loop_device_opts(Node* value, const KernelProfile& p, const DeviceInfo& device) {
  const Shape& S = value->shape;
  Actions a(S.size());
  if (p.loads.empty()) return a.list();
  // Register tiles in vectors: two wide and eight rows fill AVX-512's 32 registers of 16 floats;
  // with 16 registers of 8 floats (AVX2) a tile of four rows stays in registers.
  const int64_t vec = device.vector_floats > 0 ? device.vector_floats : 16;
  const bool many_registers = vec >= 16;
  // Big tiles pay for their compile time only on big kernels.
  const int64_t max_tile = p.ops >= kBigTileOps ? kBigTile : kSmallTile;
  // The axis where a dependent operand is contiguous gets the wide factor, which the C
  // compiler turns into vector loads and FMAs.
  Reuse reuse = analyze_reuse(p, S);
  // Without a matmul pair the reused operand is a broadcast (a mask shared by heads, a norm's
  // weight): tiles over the other axes would read rows far apart, one scalar chain each, so
  // only a tile along an output axis where an operand read at every step is contiguous is
  // kept. A value read once per output (a softmax row's maximum) does not count: along its
  // run the sum of exponentials vectorizes. The reduction splits along its run.
  const bool matmul = matmul_axes(p, reuse).first >= 0;
  if (!matmul) {
    reuse.tile_axes.clear();
    reuse.contiguous_tile = reuse.contiguous_tile == reuse.stream_axis ? reuse.contiguous_tile : -1;
    if (reuse.contiguous_tile >= 0) reuse.tile_axes.push_back(reuse.contiguous_tile);
  }
  int wide = reuse.contiguous_tile, narrow = -1;
  for (int d : reuse.tile_axes)
    if (d != wide && narrow < 0) narrow = d;
  // Unrolled tiles multiply the body: keep the kernel's size within what the C compiler
  // digests quickly.
  auto pick = [&](int d, std::initializer_list<int64_t> factors, int64_t other) {
    if (d < 0) return;
    for (int64_t f : factors)
      if (S[d] % f == 0 && S[d] >= f && p.body * f * other <= kMaxUnrolledBody && f * other <= max_tile) {
        a.upcast[d] = f;
        return;
      }
  };
  // The wide axis outermost keeps the tile's accumulators in vector registers and reuses a
  // column strip of the contiguous operand across its rows. Without reuse, a reduction whose
  // per-step operand is contiguous along an output axis (a column sum) still gains from
  // computing neighbouring outputs at once: vector loads.
  if (wide < 0 && narrow < 0) wide = reuse.stream_axis;
  // A large matmul whose operands both run along the reduction (x @ W^T) packs the innermost
  // axis's operand into a strip instead: the copy transposes it, and the tile is a plain one.
  const bool packable = matmul && p.reduces.size() == 1 && p.ops >= kPackOps;
  if (wide < 0 && narrow >= 0 && packable) {
    wide = reuse.tile_axes[0];
    narrow = reuse.tile_axes[1];
  }
  // A packed matmul over a short reduction (the training presets' projections) pays more for
  // each tile's start and end: four vectors wide and four rows. The same when the rows'
  // operand is stored along the rows rather than the reduction (a weight gradient x^T dy):
  // each strip streams that operand whole, so wider strips mean fewer passes over it.
  bool rows_along_rows = false;
  if (narrow >= 0)
    for (auto& e : p.loads) rows_along_rows |= expr_coefficient(e, p.axis_var[narrow]) == 1;
  const bool short_packed = packable && (reduce_length(p.reduces[0]) <= kShortPacked || rows_along_rows);
  if (short_packed && many_registers) pick(wide, {kShortPackedVectors * vec, kWideVectors * vec, vec, 8, 4}, 1);
  else pick(wide, {kWideVectors * vec, vec, 8, 4}, 1);
  // No operand contiguous along an output axis (x @ W^T with W stored [out, in]: both run along
  // the reduction): four dot products at a time, vectorized along the reduction itself.
  const bool dot_products = wide < 0 && narrow >= 0;
  const bool four_rows = dot_products || short_packed || !many_registers;
  pick(narrow, four_rows ? std::initializer_list<int64_t>{kRowsFewRegisters, 2} : std::initializer_list<int64_t>{kRowsManyRegisters, 4, 2},
       wide < 0 ? 1 : a.upcast[wide]);
  if (dot_products && narrow >= 0)  // and four along the other reused axis: a 4x4 block of dot products
    for (int d : reuse.tile_axes)
      if (d != narrow) {
        pick(d, {4, 2}, a.upcast[narrow]);
        break;
      }
  if (wide >= 0 && a.upcast[wide] > 1) a.outer = wide;
  // A large matmul reads the wide axis's operand strip from a packed copy (see plan_pack):
  // a strip read in place walks one row of memory per reduction step, each on its own page.
  if (packable && wide >= 0 && a.upcast[wide] >= vec) a.stage = reduce_length(p.reduces[0]);
  // A reduction over a contiguous run (row sums, norms, softmax, dot products of a small tile)
  // gets independent partial accumulators: one vector register instead of a serial chain. Sums,
  // and float32 maxima (on integer keys, which vectorize); other maxima stay single chains.
  int64_t tile = 1;
  for (int64_t u : a.upcast) tile *= u;
  bool contiguous_run = !p.innermost_var.empty();
  for (Node* r : p.reduces) contiguous_run &= r->reduce_op == Op::Add || r->dtype == DType::Float32;
  for (int v : p.innermost_var) {
    bool any = false;
    for (auto& e : p.loads) any |= v >= 0 && expr_coefficient(e, v) == 1;
    contiguous_run &= any;
  }
  if (contiguous_run && tile <= 8 && !dot_products) {
    int64_t last = 0;
    for (Node* r : p.reduces) last = std::gcd(last, r->src[0]->shape[r->arg.back()]);
    for (int64_t split : {kPartialSums, kPartialSums / 2, kPartialSums / 4})
      if (last % split == 0 && last >= 2 * split && p.body * split <= kMaxUnrolledBody) {
        a.split = split;
        break;
      }
  }
  // A register tile whose epilogue selects or calls a transcendental (relu(a @ b)) stays scalar
  // in the C compiler unless the reductions are stored first and the epilogue reads them back.
  a.reload = tile > 1 && !dot_products && p.selecting_epilogue;
  return a.list();
}

// The work-group devices' table (docs/codegen.md says which measurement chose each).
constexpr int64_t kVectorElements = 4;                   // outputs per work-item of an elementwise kernel (128-bit access)
constexpr int64_t kVectorKernelMin = int64_t{1} << 16;   // elements below which elementwise kernels stay scalar
constexpr int64_t kNestedRows = 16, kNestedRowsFew = 4;  // rows per work-item of a reduction over recomputed scores
constexpr int64_t kNestedLanes = 64, kNestedSplit = 4;   // its lanes, and keys per lane step
constexpr int64_t kGroupLanes = 256, kColumnGroup = 32, kColumnLanes = 8;  // grouped reductions: lanes; outputs and lanes along a contiguous axis
constexpr int64_t kMinLanes = 4;                         // fewer lanes than this: no grouped reduction

// Matrix-unit tiles, largest first: warps and fragments per warp along rows and columns, and
// the reduction steps staged per pass (the longest that fits).
struct MmaTile {
  int64_t warps_rows, warps_cols, frags_rows, frags_cols;
};
constexpr MmaTile kMmaTiles[] = {{2, 4, 4, 8}, {2, 4, 4, 4}, {2, 2, 4, 4}, {2, 2, 2, 4}, {1, 1, 1, 1}};
constexpr int64_t kMmaChunks[] = {64, 32};

// Float32 matmul tiles through local memory: Ln x Lm work-items of Un x Um registers each
// (n is the inner axis, along which the output and one factor are contiguous), largest first;
// a factor computed by nested reductions (recomputed attention probabilities times V) first
// tries a tall tile of its own.
struct Tile {
  int64_t Ln, Lm, Un, Um;
};
constexpr Tile kTiles[] = {{16, 8, 4, 8}, {16, 16, 4, 4}, {8, 8, 4, 4}, {8, 8, 2, 2}};
constexpr Tile kNestedTile = {16, 4, 4, 16};

// A bf16 matmul on the matrix unit: the largest tile with enough groups whose staged chunk fits.
// `parts`: 3 when a factor is staged as three bfloat16 parts (counted for both factors: an upper bound).
bool matrix_unit_tile(Actions& a, const Shape& S, int n, int m, int64_t length, int parts, const DeviceInfo& dev) {
  const MatrixUnit& u = dev.matrix_units[0];
  for (MmaTile t : kMmaTiles) {
    const int64_t Tr = t.warps_rows * t.frags_rows * u.m, Tc = t.warps_cols * t.frags_cols * u.n;
    const int64_t items = t.warps_rows * t.warps_cols * u.lanes;
    if (S[m] % Tr || S[n] % Tc || items > dev.max_local_size) continue;
    if (numel(S) / (Tr * Tc) < dev.compute_units && t.warps_rows * t.frags_rows > 1) continue;  // too few groups
    int64_t chunk = 0;
    for (int64_t c : kMmaChunks)
      if (!chunk && length % c == 0 && parts * (mma_stage_bytes(Tr, c) + mma_stage_bytes(Tc, c)) <= dev.local_memory_bytes) chunk = c;
    if (!chunk) continue;
    a.local.assign(S.size(), 1);
    a.local[m] = t.warps_rows, a.local[n] = t.warps_cols;
    a.upcast[m] = t.frags_rows, a.upcast[n] = t.frags_cols;
    a.stage = chunk;
    a.mma_rows = m, a.mma_cols = n;
    return true;
  }
  return false;
}

// A float32 matmul: a work-group computes a tile, both factors staged through local memory;
// smaller tiles when there would be fewer groups than compute units.
bool staged_tile(Actions& a, const Shape& S, int n, int m, int64_t length, bool nested, const DeviceInfo& dev) {
  std::vector<Tile> tiles(std::begin(kTiles), std::end(kTiles));
  if (nested) tiles.insert(tiles.begin(), kNestedTile);
  for (Tile t : tiles) {
    const int64_t Tn = t.Ln * t.Un, Tm = t.Lm * t.Um, items = t.Ln * t.Lm;
    if (S[n] % Tn || S[m] % Tm || items > dev.max_local_size) continue;
    if (numel(S) / (Tn * Tm) < dev.compute_units && t.Un != 2) continue;  // too few groups: smaller tiles
    a.local.assign(S.size(), 1);
    a.local[n] = t.Ln, a.local[m] = t.Lm;
    a.upcast[n] = t.Un, a.upcast[m] = t.Um;
    // A factor computed by a nested reduction takes longer chunks: each work-item computes
    // more of its elements as one register tile, sharing their operands' loads.
    for (int64_t chunk : nested ? std::vector<int64_t>{64, 32, 16, 8} : std::vector<int64_t>{16, 8})
      if (length % chunk == 0 && (chunk * Tn) % items == 0 && (chunk * Tm) % items == 0 &&
          chunk * (Tn + Tm + 8) * 4 <= dev.local_memory_bytes) {
        a.stage = chunk;
        break;
      }
    return true;
  }
  return false;
}

Opts work_group_opts(Node* value, const InputOf& input_of, const DeviceInfo& dev) {
  const Shape& S = value->shape;
  const int nd = static_cast<int>(S.size());
  Actions a(S.size());
  if (int64_t lanes = row_lanes(value, {}, input_of, dev)) {
    // A norm or softmax: one group per row computes its statistics, then the row.
    a.rows = true;
    a.group = lanes;
    a.upcast[nd - 1] = S[nd - 1] / lanes;
    return a.list();
  }
  const KernelProfile p = profile_kernel(value, input_of);
  if (p.reduces.empty()) {
    // Elementwise: neighbouring outputs per work-item, loaded and stored as vectors.
    if (nd > 0 && S[nd - 1] % kVectorElements == 0 && numel(S) >= kVectorKernelMin) a.upcast[nd - 1] = kVectorElements;
    return a.list();
  }
  bool float_sums = true;
  int64_t length = 0;
  for (Node* r : p.reduces) {
    float_sums &= r->dtype == DType::Float32;
    length = std::gcd(length, reduce_length(r));
  }
  if (!float_sums) return a.list();
  Reuse reuse = analyze_reuse(p, S);
  auto [n, m] = matmul_axes(p, reuse);
  bool nested = false;
  for (Node* r : p.reduces) nested |= computes_reduction(r->src[0].get(), input_of);
  if (n >= 0 && !dev.matrix_units.empty()) {
    // A sum of matmuls (an input's gradient through several projections) runs each on the unit
    // in turn, into the same fragments.
    int parts = 1;  // the most staged parts of any reduction (0: one cannot take the unit)
    for (Node* r : p.reduces) {
      const int rp = matrix_unit_parts(r, dev.matrix_units[0].input);
      parts = rp && parts ? std::max(parts, rp) : 0;
    }
    const char* why = !parts ? "neither factor is an exact 16-bit value" : !matrix_unit_tile(a, S, n, m, length, parts, dev) ? "no tile fits its shape" : nullptr;
    if (!why) return a.list();
    if (debug_level() >= 2) debug_log().info("matmul of shape {} ({} reduction(s)) not on the matrix unit: {}", to_string(S), p.reduces.size(), why);
  }
  if (n >= 0) {
    if (staged_tile(a, S, n, m, length, nested, dev)) return a.list();
    a.upcast.assign(S.size(), 1);  // no tile fits: reduce in groups of lanes like any reduction
  }
  int rows = -1;  // the widest output axis
  for (int d = 0; d < nd; ++d)
    if (S[d] % kNestedRowsFew == 0 && (rows < 0 || S[d] > S[rows])) rows = d;
  if (nested && rows >= 0 && length >= 64) {
    // Scores recomputed inside a reduction over keys: rows and keys per work-item and loop step,
    // so that the nested dot products run as a register tile (see lower_nested_together): each
    // key element loaded serves every row, each query element every key; lanes split the keys.
    a.upcast[rows] = S[rows] % kNestedRows == 0 ? kNestedRows : kNestedRowsFew;
    a.group = lanes_for(length, std::min<int64_t>(kNestedLanes, dev.max_local_size), 16);
    if (a.group < kMinLanes) a.group = 1;
    if (length % (a.group * kNestedSplit) == 0) a.split = kNestedSplit;
    return a.list();
  }
  if (length >= 32) {
    // A reduction without reuse (a row or column sum): a group of lanes splits each output's
    // reduction. Along a contiguous output axis, neighbouring outputs share a group so that its
    // loads stay coalesced.
    int64_t across = 1;
    if (reuse.stream_axis >= 0 && S[reuse.stream_axis] % kColumnGroup == 0) {
      across = kColumnGroup;
      a.local.assign(S.size(), 1);
      a.local[reuse.stream_axis] = across;
    }
    int64_t lanes = lanes_for(length, std::min<int64_t>(across > 1 ? kColumnLanes : kGroupLanes, dev.max_local_size / across), kMinLanes);
    if (lanes >= kMinLanes) a.group = lanes;
    else a.local.clear();
  }
  return a.list();
}

}  // namespace

Opts heuristic_opts(Node* value, const InputOf& input_of, const DeviceInfo& device) {
  if (device.max_local_size > 1) return work_group_opts(value, input_of, device);
  return loop_device_opts(value, profile_kernel(value, input_of), device);
}

}  // namespace lathe
