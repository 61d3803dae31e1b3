// Matrix units (lathe/matrix_unit.h): matmuls of bfloat16 factors computed by warps of
// fragments. A device with a native unit (NVIDIA through OpenCL, MFMA on the AMD emulator) runs
// the instruction; on PoCL the ctest entry matrix_units_emulated sets
// LATHE_OPENCL_MATRIX_UNITS=emulate, and the lowerer's emulated unit (every known layout,
// exchanged through local memory) checks the staging, the packing, the accumulator placement
// and the epilogues against float64. Devices without a unit skip these.
#include "codegen/lower.h"
#include "codegen/lowering_cache.h"
#include "codegen/opt.h"
#include "lathe/device.h"
#include "lathe/render_opencl.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"
#include "test_util.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace lathe::test {
namespace {

ref::Array bf16_values(ref::Array a) {
  for (auto& x : a.v) x = bfloat16_bits_to_float(float_to_bfloat16_bits(static_cast<float>(x)));
  return a;
}

class MatrixUnits : public Conformance {
 protected:
  Device* device() { return default_device(); }
  bool has_units() { return !device()->info().matrix_units.empty(); }
  const DeviceInfo& with_unit() { return device()->info(); }
  // The device's unit; an emulated one computes any layout, so there every unit lathe knows.
  std::vector<DeviceInfo> units_to_test() {
    const DeviceInfo& info = device()->info();
    if (info.matrix_units[0].native) return {info};
    std::vector<DeviceInfo> all;
    for (MatrixUnit u : {mma_sync_m16n8k16_bf16(), mfma_f32_16x16x16_bf16(), wmma_f32_16x16x16_bf16()}) {
      u.native = false;
      all.push_back(info);
      all.back().matrix_units = {u};
    }
    return all;
  }
  struct Lowered {
    Tensor value;  // owns the graph the schedule points into
    std::vector<ScheduleItem> items;
    LoweredKernel lk;
    std::vector<float> run() {
      auto program = items[0].node->device->compile(lk.kernel);
      std::vector<void*> handles;
      for (Buffer* b : lk.params) handles.push_back(b->handle());
      program->run(handles, true);
      std::vector<uint8_t> bytes(items[0].output->bytes());
      items[0].output->copy_out(bytes.data());
      std::vector<float> values(static_cast<size_t>(items[0].output->numel()));
      for (size_t i = 0; i < values.size(); ++i) {
        if (value.dtype() == DType::Float32) std::memcpy(&values[i], &bytes[i * 4], 4);
        else values[i] = bfloat16_bits_to_float(static_cast<uint16_t>(bytes[i * 2] | bytes[i * 2 + 1] << 8));
      }
      return values;
    }
  };
  // The one kernel computing t, with `opts` or the heuristics for `info`.
  Lowered lowered(const Tensor& t, const DeviceInfo& info, const Opts* opts = nullptr) {
    Lowered l;
    l.value = t;
    l.items = create_schedule({t.node().get()});
    EXPECT_EQ(l.items.size(), 1u);
    Node* self = l.items[0].node;
    auto input_of = [self](Node* n) -> Buffer* { return n == self ? nullptr : n->buffer.get(); };
    Opts chosen = opts ? *opts : heuristic_opts(l.items[0].value, input_of, info);
    l.lk = lower_kernel(l.items[0].value, l.items[0].output.get(), input_of, apply_opts(chosen, l.items[0].value, info));
    return l;
  }
  static int count(const Kernel& k, IOp op) {
    return static_cast<int>(std::count_if(k.insts.begin(), k.insts.end(), [op](const Inst& in) { return in.op == op; }));
  }
  static ::testing::AssertionResult near(const std::vector<float>& got, const ref::Array& want, Tol tol) {
    if (got.size() != want.v.size()) return ::testing::AssertionFailure() << got.size() << " values, want " << want.v.size();
    for (size_t i = 0; i < got.size(); ++i)
      if (!(std::abs(got[i] - want.v[i]) <= tol.atol + tol.rtol * std::abs(want.v[i])))
        return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want " << want.v[i];
    return ::testing::AssertionSuccess();
  }
  // sum_k x[.., m, k] * w[.., k, n] over bfloat16 values, in float32 (the product PyTorch's
  // autocast and the unit compute, before the output is rounded).
  static Tensor product(const Tensor& x, const Tensor& w) {
    // The casts are stored first, as the scheduler stores them (float32 copies of exact values).
    Tensor a = x.cast(DType::Float32).realize(), b = w.cast(DType::Float32).realize().transpose(-1, -2);
    return (a.unsqueeze(-2) * b.unsqueeze(-3)).sum({-1});
  }
  void expect_unit_used(const Kernel& k, const DeviceInfo& info) {
    if (info.matrix_units[0].native) EXPECT_GT(count(k, IOp::Mma), 0) << kernel_ir_text(k);
    else EXPECT_EQ(count(k, IOp::Mma), 0);
    int words = 0;
    for (const Inst& in : k.insts) words += in.op == IOp::DefineLocal && in.dtype == DType::UInt32;
    EXPECT_GE(words, 2) << "the factors are staged as packed 16-bit pairs";
    EXPECT_EQ(k.local_size % 32, 0) << "whole warps";
  }
};
LATHE_CONFORMANCE(MatrixUnits);

// float32 sums of exact products (bfloat16 x bfloat16 fits float32): error grows with k.
Tol dot_tol(int64_t k) { return {1e-5, 2e-6 * static_cast<double>(k)}; }

TEST_P(MatrixUnits, FragmentsOfSmallTilesMatchFloat64) {
  if (!has_units()) GTEST_SKIP() << "no matrix unit (LATHE_OPENCL_MATRIX_UNITS=emulate gives PoCL one)";
  ref::Array xa = bf16_values(ref::random({64, 96}, rng)), wa = bf16_values(ref::random({96, 64}, rng));
  Tensor y = product(ref::tensor(xa, DType::BFloat16).realize(), ref::tensor(wa, DType::BFloat16).realize());
  for (const DeviceInfo& info : units_to_test()) {
    const MatrixUnit& unit = info.matrix_units[0];
    SCOPED_TRACE(unit.instruction);
    // 2 x 2 warps of 2 x 1 fragments: a 64-row tile, groups along the columns; stage(32) makes
    // three passes over the reduction.
    auto opts = parse_opts("mma(0,1) local(0,2) local(1,2) upcast(0,2) upcast(1,1) stage(32)");
    ASSERT_TRUE(opts.has_value());
    Lowered l = lowered(y, info, &*opts);
    expect_unit_used(l.lk.kernel, info);
    EXPECT_EQ(l.lk.kernel.local_size, 4 * unit.lanes);
    EXPECT_TRUE(near(l.run(), ref::matmul(xa, wa), dot_tol(96)));
  }
}

TEST_P(MatrixUnits, HeuristicsPickTheUnitForBf16MatmulsWithEpilogues) {
  if (!has_units()) GTEST_SKIP() << "no matrix unit (LATHE_OPENCL_MATRIX_UNITS=emulate gives PoCL one)";
  // x @ W^T + b, ReLU, as a Linear layer under autocast: both factors run along the reduction.
  // Inputs that are not tracked for gradients: realization releases the casts' sources, and
  // the factors must still be known to hold exact 16-bit values.
  ref::Array xa = bf16_values(ref::random({128, 64}, rng)), wa = bf16_values(ref::random({64, 64}, rng));
  ref::Array ba = ref::random({64}, rng);
  Tensor xb = ref::tensor(xa, DType::BFloat16).realize(), wb = ref::tensor(wa, DType::BFloat16).realize();
  Tensor bias = ref::tensor(ba).realize();
  Tensor y = (product(xb, wb.transpose(0, 1)) + bias).relu();
  ref::Array wt{{64, 64}, std::vector<double>(64 * 64)};
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 64; ++j) wt.v[static_cast<size_t>(i * 64 + j)] = wa.v[static_cast<size_t>(j * 64 + i)];
  ref::Array want = ref::binary(ref::matmul(xa, wt), ba, [](double m, double b) { return std::max(0.0, m + b); });
  // This device's tile, and the one-warp tile a GPU with many more compute units than groups takes.
  for (DeviceInfo info : units_to_test())
    for (int compute_units : {info.compute_units, 132}) {
      SCOPED_TRACE(info.matrix_units[0].instruction + ", compute units " + std::to_string(compute_units));
      info.compute_units = compute_units;
      Lowered l = lowered(y, info);
      expect_unit_used(l.lk.kernel, info);
      EXPECT_TRUE(near(l.run(), want, dot_tol(64)));
    }
}

// A sum of matmuls (an input's gradient through the q, k and v projections) takes the unit for
// each in turn, into the same fragments.
TEST_P(MatrixUnits, SumsOfMatmulsAccumulateEachOnTheUnit) {
  if (!has_units()) GTEST_SKIP() << "no matrix unit (LATHE_OPENCL_MATRIX_UNITS=emulate gives PoCL one)";
  ref::Array x1 = bf16_values(ref::random({64, 128}, rng)), w1 = bf16_values(ref::random({128, 64}, rng));
  ref::Array x2 = bf16_values(ref::random({64, 64}, rng)), w2 = bf16_values(ref::random({64, 64}, rng));
  Tensor y = product(ref::tensor(x1, DType::BFloat16).realize(), ref::tensor(w1, DType::BFloat16).realize()) +
             product(ref::tensor(x2, DType::BFloat16).realize(), ref::tensor(w2, DType::BFloat16).realize());
  ref::Array want = ref::binary(ref::matmul(x1, w1), ref::matmul(x2, w2), [](double a, double b) { return a + b; });
  for (const DeviceInfo& info : units_to_test()) {
    SCOPED_TRACE(info.matrix_units[0].instruction);
    Lowered l = lowered(y, info);
    expect_unit_used(l.lk.kernel, info);
    if (info.matrix_units[0].native) EXPECT_EQ(count(l.lk.kernel, IOp::Mma) % 2, 0) << "both reductions on the unit";
    EXPECT_TRUE(near(l.run(), want, dot_tol(192)));
  }
}

// A float32 factor beside an exact one (a one-hot embedding and its gradient) is staged as three
// bfloat16 parts whose sum is the value: the lookup returns the table's rows exactly, and the
// gradient sums to float32 accuracy.
TEST_P(MatrixUnits, FloatFactorsBesideExactOnesAreSplitIntoThreeParts) {
  if (!has_units()) GTEST_SKIP() << "no matrix unit (LATHE_OPENCL_MATRIX_UNITS=emulate gives PoCL one)";
  const int64_t tokens = 64, vocab = 128, dim = 64;
  ref::Array table = ref::random({vocab, dim}, rng), grad = ref::random({tokens, dim}, rng);
  ref::Array hot{{tokens, vocab}, std::vector<double>(static_cast<size_t>(tokens * vocab), 0.0)};
  std::vector<int> ids(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t) {
    ids[static_cast<size_t>(t)] = static_cast<int>(rng() % vocab);
    hot.v[static_cast<size_t>(t * vocab + ids[static_cast<size_t>(t)])] = 1.0;
  }
  // The one-hot as the model builds it: a bool compare, cast to float32 and stored.
  Tensor hot_bool = ref::tensor(hot).realize().gt(Tensor::full({1}, 0.5, DType::Float32, device()));
  Tensor hot_f32 = hot_bool.cast(DType::Float32).realize();
  Tensor lookup = (hot_f32.unsqueeze(-1) * ref::tensor(table).realize().unsqueeze(0)).sum({1});
  Tensor hot_t = hot_f32.transpose(0, 1);
  Tensor table_grad = (hot_t.unsqueeze(-1) * ref::tensor(grad).realize().unsqueeze(0)).sum({1});
  ref::Array hot_tv{{vocab, tokens}, std::vector<double>(static_cast<size_t>(vocab * tokens))};
  for (int64_t v = 0; v < vocab; ++v)
    for (int64_t t = 0; t < tokens; ++t) hot_tv.v[static_cast<size_t>(v * tokens + t)] = hot.v[static_cast<size_t>(t * vocab + v)];
  for (const DeviceInfo& info : units_to_test()) {
    SCOPED_TRACE(info.matrix_units[0].instruction);
    Lowered l = lowered(lookup, info);
    expect_unit_used(l.lk.kernel, info);
    std::vector<float> rows = l.run();
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t d = 0; d < dim; ++d)
        ASSERT_EQ(rows[static_cast<size_t>(t * dim + d)], static_cast<float>(table.v[static_cast<size_t>(ids[static_cast<size_t>(t)] * dim + d)]))
            << "token " << t << ", element " << d;
    Lowered g = lowered(table_grad, info);
    expect_unit_used(g.lk.kernel, info);
    EXPECT_TRUE(near(g.run(), ref::matmul(hot_tv, grad), Tol{1e-5, 1e-6}));
  }
}

// Three matmuls of one structure in one kernel (as the scheduler joins weight gradients): each
// output's reduction runs after the previous one, and their stages reuse the same local arrays
// instead of adding up past the device's local memory.
TEST_P(MatrixUnits, OutputsOfOneKernelShareTheirStages) {
  if (!has_units()) GTEST_SKIP() << "no matrix unit (LATHE_OPENCL_MATRIX_UNITS=emulate gives PoCL one)";
  std::vector<ref::Array> xs, ws;
  std::vector<Tensor> ys;
  for (int i = 0; i < 3; ++i) {
    xs.push_back(bf16_values(ref::random({64, 64}, rng)));
    ws.push_back(bf16_values(ref::random({64, 64}, rng)));
    ys.push_back(product(ref::tensor(xs.back(), DType::BFloat16).realize(), ref::tensor(ws.back(), DType::BFloat16).realize()));
  }
  std::vector<ScheduleItem> items = create_schedule({ys[0].node().get(), ys[1].node().get(), ys[2].node().get()});
  ASSERT_EQ(items.size(), 3u);
  std::set<Node*> selves;
  Outputs outs;
  for (auto& it : items) selves.insert(it.node), outs.push_back({it.value, it.output.get()});
  auto input_of = [&](Node* n) -> Buffer* { return selves.count(n) ? nullptr : n->buffer.get(); };
  for (const DeviceInfo& info : units_to_test()) {
    SCOPED_TRACE(info.matrix_units[0].instruction);
    Opts opts = heuristic_opts(items[0].value, input_of, info);
    LoweredKernel one = lower_kernel(outs[0].first, outs[0].second, input_of, apply_opts(opts, items[0].value, info));
    LoweredKernel three = lower_kernel(outs, input_of, apply_opts(opts, items[0].value, info));
    EXPECT_EQ(count(three.kernel, IOp::DefineLocal), count(one.kernel, IOp::DefineLocal)) << kernel_ir_text(three.kernel);
    auto program = device()->compile(three.kernel);
    std::vector<void*> handles;
    for (Buffer* b : three.params) handles.push_back(b->handle());
    program->run(handles, true);
    for (size_t o = 0; o < 3; ++o) {
      const size_t i = static_cast<size_t>(std::find_if(ys.begin(), ys.end(), [&](const Tensor& y) { return y.node().get() == items[o].node; }) - ys.begin());
      std::vector<float> got(64 * 64);
      outs[o].second->copy_out(got.data());
      EXPECT_TRUE(near(got, ref::matmul(xs[i], ws[i]), dot_tol(64))) << "output " << o;
    }
  }
}

// The unit's preconditions, checked before lowering; two float32 factors (neither exact) never take the unit.
TEST_P(MatrixUnits, PreconditionsAreChecked) {
  if (!has_units()) GTEST_SKIP() << "no matrix unit (LATHE_OPENCL_MATRIX_UNITS=emulate gives PoCL one)";
  EXPECT_NE(error_of([&] { apply_opts(*parse_opts("mma(0,1) stage(32)"), 2, true, true, {}); }).find("no matrix unit"),
            std::string::npos);
  std::vector<MatrixUnit> units = {mma_sync_m16n8k16_bf16()};
  units[0].native = false;
  EXPECT_NE(error_of([&] { apply_opts(*parse_opts("mma(0,1)"), 2, true, true, units); }).find("needs stage"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_opts(*parse_opts("mma(1,1) stage(32)"), 2, true, true, units); }).find("another output axis"),
            std::string::npos);
  EXPECT_EQ(opts_text(*parse_opts("mma(0,1) stage(32)")), "mma(0,1) stage(32)");
  ref::Array xa = ref::random({128, 64}, rng), wa = ref::random({64, 128}, rng);
  Tensor y = ref::tensor(xa).realize().matmul(ref::tensor(wa).realize());
  Lowered l = lowered(y, with_unit());
  EXPECT_EQ(count(l.lk.kernel, IOp::Mma), 0);
  for (const Inst& in : l.lk.kernel.insts) EXPECT_FALSE(in.op == IOp::DefineLocal && in.dtype == DType::UInt32);
}

// The OpenCL dialect renders a native unit's instruction as inline PTX (run only where NVIDIA's
// platform is; here the text is checked).
TEST(MatrixUnitRender, OpenCLRendersMmaSyncAsInlinePtx) {
  set_default_device("cpu");
  std::mt19937 rng(7);
  ref::Array xa = bf16_values(ref::random({32, 32}, rng)), wa = bf16_values(ref::random({32, 16}, rng));
  Tensor y = ref::tensor(xa, DType::BFloat16).realize().matmul(ref::tensor(wa, DType::BFloat16).realize());
  // On the cpu the float32 casts are items of their own; the matmul is the last.
  auto items = create_schedule({y.node().get()});
  ScheduleItem& mm = items.back();
  auto input_of = [&](Node* n) -> Buffer* {
    if (n == mm.node) return nullptr;
    for (auto& it : items)
      if (it.node == n) return it.output.get();
    return n->buffer.get();
  };
  DeviceInfo info;
  info.max_local_size = 256;
  info.local_memory_bytes = 48 << 10;
  info.parallel_all_outer_loops = true;
  info.matrix_units = {mma_sync_m16n8k16_bf16()};
  LoweredKernel lk = lower_kernel(mm.value, mm.output.get(), input_of,
                                  apply_opts(*parse_opts("mma(0,1) local(0,2) upcast(1,2) stage(32)"), mm.value, info));
  std::string src = render_c_family(lk.kernel, OpenCLDialect());
  size_t at = 0;
  int found = 0;
  while ((at = src.find("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", at)) != std::string::npos) ++found, ++at;
  // 32 steps in two k-steps of 16, each warp 1 x 2 fragments: two instructions in the loop body.
  EXPECT_EQ(found, 2) << src;
}

// Each layout lathe knows describes its unit's whole product; a register outside the tile or
// an element no lane holds is caught.
TEST(MatrixUnitLayouts, EveryKnownUnitCoversItsTiles) {
  for (const MatrixUnit& u : {mma_sync_m16n8k16_bf16(), mfma_f32_16x16x16_bf16(), wmma_f32_16x16x16_bf16()}) {
    EXPECT_TRUE(covers_its_tiles(u)) << u.instruction;
    EXPECT_EQ(2 * u.a.words() * u.lanes % (u.m * u.k), 0) << u.instruction;
  }
  MatrixUnit gap = mfma_f32_16x16x16_bf16();
  gap.a.pair = {0, 0};  // steps 2..3 of every quarter held by no lane
  EXPECT_FALSE(covers_its_tiles(gap));
  MatrixUnit outside = mma_sync_m16n8k16_bf16();
  outside.c.row_step = 9;  // rows 9..16: the last is outside the 16-row tile
  EXPECT_FALSE(covers_its_tiles(outside));
  MatrixUnit twice = wmma_f32_16x16x16_bf16();
  twice.c.lane_row.mod = 1;  // both lane halves would write the same rows
  EXPECT_FALSE(covers_its_tiles(twice));
}

}  // namespace
}  // namespace lathe::test
