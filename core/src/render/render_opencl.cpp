// The OpenCL C dialect of the renderer.
#include "lathe/render_opencl.h"

#include "lathe/error.h"

namespace lathe {

std::string OpenCLDialect::prelude() const {
  return R"(/* float16 and bfloat16 are stored as ushort; arithmetic is float, rounded to nearest-even. */
inline float lt_h2f(ushort h) {
  uint s = (uint)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) { float f = (float)m * 5.9604644775390625e-8f; return s ? -f : f; }
  return as_float(e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112) << 23) | (m << 13)));
}
inline ushort lt_f2h(float f) {
  uint x = as_uint(f), s = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return (ushort)(s | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
  if (a >= 0x477ff000u) return (ushort)(s | 0x7c00u);
  if (a < 0x38800000u) {
    float sc = as_float(a) * 16777216.0f; uint q = (uint)sc; float r = sc - (float)q;
    if (r > 0.5f || (r == 0.5f && (q & 1u))) q++;
    return (ushort)(s | q);
  }
  return (ushort)(s | ((a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u) >> 13));
}
inline float lt_bf2f(ushort b) { return as_float((uint)b << 16); }
inline ushort lt_f2bf(float f) {
  uint x = as_uint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (ushort)((x >> 16) | 0x40u);
  return (ushort)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float lt_rh(float f) { return lt_h2f(lt_f2h(f)); }
inline float lt_rbf(float f) { return lt_bf2f(lt_f2bf(f)); }
)";
}

std::string OpenCLDialect::signature(const Kernel& k) const {
  std::string s = "__kernel void " + k.name + "(";
  for (size_t i = 0; i < k.params.size(); ++i) {
    std::string t = storage_type(k.params[i].dtype);
    s += std::string(i ? ", " : "") + "__global " + (k.params[i].written ? "" : "const ") + t + "* restrict b" + std::to_string(i);
  }
  return s + ") {\n";
}

std::string OpenCLDialect::global_loop(const std::string& var, int64_t extent) const {
  return "const long " + var + " = get_global_id(0); if (" + var + " < " + std::to_string(extent) + "L) {";
}

std::string OpenCLDialect::type(DType d) const {
  switch (d) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uchar";
    case DType::Int32: return "int";
    case DType::UInt32: return "uint";
    case DType::Int64: return "long";
    case DType::Float16: case DType::BFloat16: case DType::Float32: return "float";
  }
  return "?";
}

std::string OpenCLDialect::storage_type(DType d) const {
  if (d == DType::Float16 || d == DType::BFloat16) return "ushort";
  if (d == DType::Bool) return "uchar";
  return type(d);
}

std::string OpenCLDialect::math(Op op, DType, const std::string& x) const { return math_function(op) + "(" + x + ")"; }

std::string OpenCLDialect::bitcast(DType from, DType to, const std::string& x) const {
  auto bits_type = [&](DType d) { return d == DType::Float16 || d == DType::BFloat16 ? std::string("ushort") : type(d); };
  std::string src = from == DType::Float16 ? "lt_f2h(" + x + ")" : from == DType::BFloat16 ? "lt_f2bf(" + x + ")" : x;
  std::string raw = "as_" + bits_type(to) + "((" + bits_type(from) + ")(" + src + "))";
  if (to == DType::Float16) return "lt_h2f(" + raw + ")";
  if (to == DType::BFloat16) return "lt_bf2f(" + raw + ")";
  return raw;
}

std::string OpenCLDialect::special(SpecialId id) const {
  return id == SpecialId::GroupId ? "(long)get_group_id(0)" : "(long)get_local_id(0)";
}

std::string OpenCLDialect::local_array(DType dtype, const std::string& name, int64_t elements) const {
  // Aligned for the 128-bit accesses of vector_load/vector_store (the type alone promises 4 bytes).
  return "__local " + type(dtype) + " " + name + "[" + std::to_string(elements) + "] __attribute__((aligned(16)));";
}

std::string OpenCLDialect::barrier() const { return "barrier(CLK_LOCAL_MEM_FENCE);"; }

// The index is a multiple of four and buffers are aligned to at least 16 bytes, so the
// pointer cast is exact and the compiler emits one 128-bit (64-bit for 16-bit types) access.
// 16-bit floats are ushort in memory and float in registers and local arrays.
namespace {
bool narrow_in_memory(DType d, bool local) { return !local && (d == DType::BFloat16 || d == DType::Float16); }
}  // namespace

std::string OpenCLDialect::vector_type(DType dtype, bool local) const {
  return (local ? type(dtype) : storage_type(dtype)) + "4";
}

std::string OpenCLDialect::vector_load(DType dtype, const std::string& base, const std::string& index, bool local) const {
  return "*(" + std::string(local ? "__local " : "__global const ") + vector_type(dtype, local) + "*)(" + base + " + " + index + ")";
}

std::string OpenCLDialect::vector_lane(DType dtype, bool local, const std::string& vec, int lane) const {
  std::string v = vec + ".s" + std::to_string(lane);
  if (!narrow_in_memory(dtype, local)) return v;
  return (dtype == DType::BFloat16 ? "lt_bf2f(" : "lt_h2f(") + v + ")";
}

std::string OpenCLDialect::vector_store(DType dtype, const std::string& base, const std::string& index, bool local,
                                        const std::vector<std::string>& lanes) const {
  std::string values;
  for (size_t i = 0; i < lanes.size(); ++i) {
    std::string v = lanes[i];
    if (narrow_in_memory(dtype, local)) v = (dtype == DType::BFloat16 ? "lt_f2bf(" : "lt_f2h(") + v + ")";
    values += (i ? ", " : "") + v;
  }
  return "*(" + std::string(local ? "__local " : "__global ") + vector_type(dtype, local) + "*)(" + base + " + " + index + ") = (" +
         vector_type(dtype, local) + ")(" + values + ");";
}

std::string OpenCLDialect::mma(DType input, const std::vector<std::string>& acc, const std::vector<std::string>& a,
                               const std::vector<std::string>& b) const {
  check(input == DType::BFloat16 || input == DType::Float16, "OpenCL renderer: matrix units take bfloat16 or float16 inputs");
  check(acc.size() == 4 && a.size() == 4 && b.size() == 2, "OpenCL renderer: the matrix unit is mma.sync.m16n8k16 (4, 4 and 2 registers)");
  const std::string type = input == DType::BFloat16 ? "bf16" : "f16";
  // D and C are the same registers: outputs %0-%3, and the accumulators again as inputs %10-%13.
  std::string s = "__asm volatile(\"mma.sync.aligned.m16n8k16.row.col.f32." + type + "." + type +
                  ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\" : ";
  for (int i = 0; i < 4; ++i) s += std::string(i ? ", " : "") + "\"=f\"(" + acc[i] + ")";
  s += " : ";
  for (int i = 0; i < 4; ++i) s += std::string(i ? ", " : "") + "\"r\"(" + a[i] + ")";
  for (int i = 0; i < 2; ++i) s += ", \"r\"(" + b[i] + ")";
  for (int i = 0; i < 4; ++i) s += ", \"f\"(" + acc[i] + ")";
  return s + ");";
}

}  // namespace lathe
