// The C-family renderer: kernel IR to C source, with the C dialect's spelling.
#include "lathe/render.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "lathe/error.h"
#include "lathe/vector_access.h"

namespace lathe {

std::string CDialect::prelude() const {
  return R"(#include <math.h>
#include <stdint.h>
#include <string.h>
/* Kernels with their own optimize attribute (a C compiler's vectorization hints) would not
   inline a plain static inline helper, and a call keeps a loop from vectorizing. */
#define LT_INLINE static inline __attribute__((always_inline))
/* float16 and bfloat16 live in memory as 16-bit words; arithmetic is float32, rounded to
   nearest-even whenever a value is stored or an op's result has a 16-bit type. */
LT_INLINE float lt_h2f(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
  float f;
  if (e == 0) { f = (float)m * 5.9604644775390625e-8f; return s ? -f : f; }
  u = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112) << 23) | (m << 13));
  memcpy(&f, &u, 4); return f;
}
LT_INLINE uint16_t lt_f2h(float f) {
  uint32_t x, s, a; memcpy(&x, &f, 4); s = (x >> 16) & 0x8000u; a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return (uint16_t)(s | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
  if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u);
  if (a < 0x38800000u) {
    float af, sc, r; uint32_t q; memcpy(&af, &a, 4); sc = af * 16777216.0f; q = (uint32_t)sc; r = sc - (float)q;
    if (r > 0.5f || (r == 0.5f && (q & 1u))) q++;
    return (uint16_t)(s | q);
  }
  return (uint16_t)(s | ((a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u) >> 13));
}
LT_INLINE float lt_bf2f(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }
/* Both results, then a select (NaN stays a quiet NaN): a select vectorizes, an early return does not. */
LT_INLINE uint16_t lt_f2bf(float f) {
  uint32_t x; memcpy(&x, &f, 4);
  uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16, quiet = (x >> 16) | 0x40u;
  return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}
/* 2^x without a library call, so loops over it vectorize: 2^round(x) built from exponent bits
   (in two halves, to reach the subnormal range), times a degree-6 polynomial for 2^f on
   [-0.5, 0.5] (Cephes' exp2f coefficients, relative error below 2e-7). */
LT_INLINE float lt_exp2(float x) {
  float c = x > 128.0f ? 128.0f : (x < -151.0f ? -151.0f : x);
  float n = floorf(c + 0.5f), f = c - n;
  float p = ((((((1.535336188319500e-4f * f + 1.339887440266574e-3f) * f + 9.618437357674640e-3f) * f +
                5.550332471162809e-2f) * f + 2.402264791363012e-1f) * f + 6.931472028550421e-1f) * f) + 1.0f;
  int32_t i = (int32_t)n, h = i >> 1;
  uint32_t a = (uint32_t)(h + 127) << 23, b = (uint32_t)(i - h + 127) << 23;
  float fa, fb;
  memcpy(&fa, &a, 4); memcpy(&fb, &b, 4);
  float r = p * fa * fb;
  return x != x ? x : r;
}
LT_INLINE float lt_rh(float f) { return lt_h2f(lt_f2h(f)); }
LT_INLINE float lt_rbf(float f) { return lt_bf2f(lt_f2bf(f)); }
)";
}

std::string CDialect::signature(const Kernel& k) const {
  std::string s = "void " + k.name + "(void** restrict bufs, long gstart, long gend) {\n";
  for (size_t i = 0; i < k.params.size(); ++i) {
    std::string t = storage_type(k.params[i].dtype);
    s += "  " + std::string(k.params[i].written ? "" : "const ") + t + "* restrict b" + std::to_string(i) + " = (" +
         (k.params[i].written ? "" : "const ") + t + "*)bufs[" + std::to_string(i) + "];\n";
  }
  return s;
}

std::string CDialect::global_loop(const std::string& var, int64_t) const {
  return "for (long " + var + " = gstart; " + var + " < gend; " + var + "++) {";
}

std::string CDialect::type(DType d) const {
  switch (d) {
    case DType::Bool: return "_Bool";
    case DType::UInt8: return "uint8_t";
    case DType::Int32: return "int32_t";
    case DType::UInt32: return "uint32_t";
    case DType::Int64: return "int64_t";
    case DType::Float16: case DType::BFloat16: case DType::Float32: return "float";
  }
  return "?";
}

std::string CDialect::storage_type(DType d) const {
  if (d == DType::Float16 || d == DType::BFloat16) return "uint16_t";
  if (d == DType::Bool) return "uint8_t";
  return type(d);
}

std::string CDialect::load(DType d, const std::string& pi) const {
  if (d == DType::Float16) return "lt_h2f(" + pi + ")";
  if (d == DType::BFloat16) return "lt_bf2f(" + pi + ")";
  return pi;
}

std::string CDialect::store(DType d, const std::string& pi, const std::string& v) const {
  if (d == DType::Float16) return pi + " = lt_f2h(" + v + ");";
  if (d == DType::BFloat16) return pi + " = lt_f2bf(" + v + ");";
  return pi + " = " + v + ";";
}

std::string math_function(Op op) {
  switch (op) {
    case Op::Exp2: return "exp2";
    case Op::Log2: return "log2";
    case Op::Sin: return "sin";
    case Op::Sqrt: return "sqrt";
    case Op::Trunc: return "trunc";
    default: throw Error(std::string("renderer: no math function for ") + op_name(op));
  }
}

std::string CDialect::math(Op op, DType, const std::string& x) const {
  if (op == Op::Exp2) return "lt_exp2(" + x + ")";  // inline, so loops over it vectorize
  return math_function(op) + "f(" + x + ")";
}

std::string CDialect::bitcast(DType from, DType to, const std::string& x) const {
  // 16-bit floats are float registers holding a rounded value: go through their bit pattern.
  std::string src_bits = from == DType::Float16 ? "lt_f2h(" + x + ")" : from == DType::BFloat16 ? "lt_f2bf(" + x + ")" : x;
  std::string from_t = (from == DType::Float16 || from == DType::BFloat16) ? "uint16_t" : type(from);
  std::string to_t = (to == DType::Float16 || to == DType::BFloat16) ? "uint16_t" : type(to);
  std::string raw = "({ " + from_t + " lt_s = " + src_bits + "; " + to_t + " lt_d; memcpy(&lt_d, &lt_s, sizeof lt_d); lt_d; })";
  if (to == DType::Float16) return "lt_h2f(" + raw + ")";
  if (to == DType::BFloat16) return "lt_bf2f(" + raw + ")";
  return raw;
}

std::string CDialect::special(SpecialId) const { throw Error("this dialect has no work-groups"); }
// C: a thread's own array on its stack (a packed strip of the loops form).
std::string CDialect::local_array(DType dtype, const std::string& name, int64_t elements) const {
  return type(dtype) + " " + name + "[" + std::to_string(elements) + "] __attribute__((aligned(64)));";
}
std::string CDialect::barrier() const { throw Error("this dialect has no barriers"); }
std::string CDialect::vector_type(DType, bool) const { throw Error("this dialect has no vector types"); }
std::string CDialect::vector_load(DType, const std::string&, const std::string&, bool) const { throw Error("this dialect has no vector types"); }
std::string CDialect::vector_lane(DType, bool, const std::string&, int) const { throw Error("this dialect has no vector types"); }
std::string CDialect::vector_store(DType, const std::string&, const std::string&, bool, const std::vector<std::string>&) const {
  throw Error("this dialect has no vector types");
}

namespace {

std::string float_literal(double v) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "(-INFINITY)";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

std::string const_literal(const CDialect& d, DType t, double f, int64_t i) {
  if (is_float(t)) return float_literal(f);
  if (t == DType::Bool) return i ? "1" : "0";
  if (t == DType::Int64) return std::to_string(i) + "L";
  if (t == DType::UInt32) return std::to_string(static_cast<uint32_t>(i)) + "u";
  return "(" + d.type(t) + ")" + std::to_string(i);
}

std::string round_to(DType t, const std::string& x) {
  if (t == DType::Float16) return "lt_rh(" + x + ")";
  if (t == DType::BFloat16) return "lt_rbf(" + x + ")";
  return x;
}

std::string render_cast(const CDialect& d, DType from, DType to, const std::string& x) {
  if (to == DType::Bool) return "(" + x + " != 0)";
  if (to == DType::Float16 || to == DType::BFloat16) return round_to(to, "(float)(" + x + ")");
  return "(" + d.type(to) + ")(" + x + ")";
  (void)from;
}

std::string render_alu(const CDialect& d, const Inst& in, const std::vector<std::string>& a, const std::vector<Inst>& insts) {
  DType t = in.dtype;
  auto bin = [&](const char* op) { return "(" + a[0] + op + a[1] + ")"; };
  switch (in.alu) {
    case Op::Exp2: case Op::Log2: case Op::Sin: case Op::Sqrt: case Op::Trunc: return round_to(t, d.math(in.alu, t, a[0]));
    case Op::Recip: return round_to(t, "(1.0f/" + a[0] + ")");
    case Op::Neg: return t == DType::Bool ? "(!" + a[0] + ")" : round_to(t, "(-(" + a[0] + "))");  // -(-0.2f), never --0.2f
    case Op::Cast: return render_cast(d, insts[in.src[0]].dtype, t, a[0]);
    case Op::Bitcast: return d.bitcast(insts[in.src[0]].dtype, t, a[0]);
    case Op::Add: return t == DType::Bool ? "(" + a[0] + "|" + a[1] + ")" : round_to(t, bin("+"));
    case Op::Mul: return t == DType::Bool ? "(" + a[0] + "&" + a[1] + ")" : round_to(t, bin("*"));
    case Op::Max: return "(((" + a[0] + ">" + a[1] + ")|(" + a[0] + "!=" + a[0] + "))?" + a[0] + ":" + a[1] + ")";
    case Op::IDiv: return bin("/");
    case Op::Mod: return bin("%");
    case Op::CmpLt: return bin("<");
    case Op::CmpNe: return bin("!=");
    case Op::And: return bin("&");
    case Op::Or: return bin("|");
    case Op::Xor: return bin("^");
    // A signed left shift of a negative value is undefined in C: shift the unsigned twin (each
    // dialect spells it with a leading u: uint32_t, uint) and convert back.
    case Op::Shl:
      return t == DType::Int32 || t == DType::Int64 ? "((" + d.type(t) + ")((u" + d.type(t) + ")" + a[0] + "<<" + a[1] + "))"
                                                    : "(" + d.type(t) + ")" + bin("<<");
    case Op::Shr: return bin(">>");
    case Op::Where: return "(" + a[0] + "?" + a[1] + ":" + a[2] + ")";
    default: throw Error(std::string("C renderer: unexpected ALU op ") + op_name(in.alu));
  }
}

std::string render_valid(const std::vector<IndexBound>& valid, const std::vector<std::string>& names) {
  std::string s;
  for (auto& b : valid) {
    std::string e = render_expr(b.e, names);
    if (b.e->lo < b.lo) s += (s.empty() ? "" : "&&") + ("(" + e + ">=" + std::to_string(b.lo) + ")");
    if (b.e->hi >= b.hi) s += (s.empty() ? "" : "&&") + ("(" + e + "<" + std::to_string(b.hi) + ")");
  }
  return s;
}

}  // namespace

std::string CDialect::mma(DType, const std::vector<std::string>&, const std::vector<std::string>&,
                          const std::vector<std::string>&) const {
  throw Error("C renderer: this dialect has no matrix unit (a kernel asked for one; see DeviceInfo::matrix_units)");
}

std::string render_c_family(const Kernel& k, const CDialect& d) {
  std::ostringstream out;
  out << d.prelude() << d.signature(k);
  std::vector<std::string> reg(k.insts.size());
  VectorPlan vectors = d.vector_access() ? plan_vector_access(k) : VectorPlan{std::vector<int>(k.insts.size(), -1), {}};
  int depth = 1;
  auto indent = [&]() { return std::string(2 * depth, ' '); };
  auto memory = [&](const Inst& in) { return (in.local ? "l" : "b") + std::to_string(in.buffer); };
  for (size_t i = 0; i < k.insts.size(); ++i) {
    const Inst& in = k.insts[i];
    std::string name = "v" + std::to_string(i);
    std::vector<std::string> a;
    for (int s : in.src) a.push_back(reg[s]);
    if (int r = vectors.run_of[i]; r >= 0) {
      // One 128-bit access for four lanes: loads at the first lane, stores at the last.
      const VectorRun& run = vectors.runs[r];
      if (static_cast<int>(i) != run.at) continue;
      const Inst& lane0 = k.insts[run.lanes[0]];
      std::string index = render_expr(lane0.index, k.var_names);
      if (in.op == IOp::Load) {
        std::string vec = "q" + std::to_string(i);
        out << indent() << d.vector_type(lane0.dtype, lane0.local) << " " << vec << " = "
            << d.vector_load(lane0.dtype, memory(lane0), index, lane0.local) << ";\n";
        for (int lane = 0; lane < 4; ++lane) reg[run.lanes[lane]] = d.vector_lane(lane0.dtype, lane0.local, vec, lane);
      } else {
        std::vector<std::string> lanes;
        for (int lane = 0; lane < 4; ++lane) lanes.push_back(reg[k.insts[run.lanes[lane]].src[0]]);
        out << indent() << d.vector_store(lane0.dtype, memory(lane0), index, lane0.local, lanes) << "\n";
      }
      continue;
    }
    switch (in.op) {
      case IOp::Range:
        if (std::string hint = in.unroll > 0 && !in.global ? d.unroll_hint(in.unroll) : ""; !hint.empty()) out << indent() << hint << "\n";
        out << indent()
            << (in.global ? d.global_loop(k.var_names[in.var], in.extent)
                          : "for (long " + k.var_names[in.var] + " = 0; " + k.var_names[in.var] + " < " +
                                std::to_string(in.extent) + "; " + k.var_names[in.var] + "++) {")
            << "\n";
        ++depth;
        break;
      case IOp::EndRange:
        --depth;
        out << indent() << "}\n";
        break;
      case IOp::Special:
        out << indent() << "const long " << k.var_names[in.var] << " = " << d.special(in.special) << ";\n";
        break;
      case IOp::DefineLocal:
        out << indent() << d.local_array(in.dtype, "l" + std::to_string(in.buffer), in.extent) << "\n";
        break;
      case IOp::Barrier:
        out << indent() << d.barrier() << "\n";
        break;
      case IOp::Const:
        reg[i] = const_literal(d, in.dtype, in.fvalue, in.ivalue);
        if (!in.valid.empty()) {  // a constant inside padding: zero outside the bounds
          out << indent() << d.type(in.dtype) << " " << name << " = (" << render_valid(in.valid, k.var_names) << ") ? "
              << reg[i] << " : " << const_literal(d, in.dtype, 0, 0) << ";\n";
          reg[i] = name;
        }
        break;
      case IOp::Load: {
        std::string ptr = memory(in) + "[" + render_expr(in.index, k.var_names) + "]";
        std::string cond = render_valid(in.valid, k.var_names);
        std::string value = in.local ? ptr : d.load(in.dtype, ptr);  // local arrays hold registers
        if (!cond.empty()) value = "(" + cond + ") ? " + value + " : " + const_literal(d, in.dtype, 0, 0);
        out << indent() << d.type(in.dtype) << " " << name << " = " << value << ";\n";
        reg[i] = name;
        break;
      }
      case IOp::Alu:
        out << indent() << d.type(in.dtype) << " " << name << " = " << render_alu(d, in, a, k.insts) << ";\n";
        reg[i] = name;
        break;
      case IOp::DefineAcc:
        out << indent() << d.type(in.dtype) << " " << name << " = " << const_literal(d, in.dtype, in.fvalue, in.ivalue) << ";\n";
        reg[i] = name;
        break;
      case IOp::AccUpdate: {
        const std::string& acc = a[0];
        const std::string& v = a[1];
        if (in.alu == Op::Add) out << indent() << acc << " += " << v << ";\n";
        else if (in.alu == Op::Mul) out << indent() << acc << " *= " << v << ";\n";
        else if (!is_float(in.dtype)) out << indent() << acc << " = (" << v << ">" << acc << ")?" << v << ":" << acc << ";\n";
        else out << indent() << acc << " = ((" << v << ">" << acc << ")|(" << v << "!=" << v << "))?" << v << ":" << acc << ";\n";
        break;
      }
      case IOp::Mma:
        out << indent() << d.mma(in.dtype, {a.begin(), a.begin() + in.ivalue}, {a.begin() + in.ivalue, a.begin() + in.ivalue + in.extent},
                                 {a.begin() + in.ivalue + in.extent, a.end()}) << "\n";
        break;
      case IOp::Store: {
        std::string ptr = memory(in) + "[" + render_expr(in.index, k.var_names) + "]";
        std::string cond = render_valid(in.valid, k.var_names);
        std::string store = in.local ? ptr + " = " + a[0] + ";" : d.store(in.dtype, ptr, a[0]);
        out << indent() << (cond.empty() ? "" : "if (" + cond + ") ") << store << "\n";
        break;
      }
    }
  }
  out << "}\n";
  return out.str();
}

}  // namespace lathe
