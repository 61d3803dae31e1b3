// Vector compares (VOPC, and VOPC promoted to VOP3): every condition of every type, the class
// tests, and the v_cmpx forms that also write EXEC. Lanes outside EXEC get a 0 bit.
#include <cmath>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {

float half_to_float(uint16_t h);  // gcn_ops_float.cpp

namespace {

// Conditions in opcode order: f lt eq le gt lg ge o u nge nlg ngt nle neq nlt tru for floats;
// the integer compares' f lt eq le gt ne ge t are the first eight on values that are never NaN.
template <class T>
bool float_condition(int c, T a, T b) {
  switch (c) {
    case 0: return false;
    case 1: return a < b;
    case 2: return a == b;
    case 3: return a <= b;
    case 4: return a > b;
    case 5: return a < b || a > b;
    case 6: return a >= b;
    case 7: return !std::isnan(a) && !std::isnan(b);
    case 8: return std::isnan(a) || std::isnan(b);
    case 9: return !(a >= b);
    case 10: return !(a < b || a > b);
    case 11: return !(a > b);
    case 12: return !(a <= b);
    case 13: return !(a == b);
    case 14: return !(a < b);
    default: return true;
  }
}
enum class Type { F16, F32, F64, I16, U16, I32, U32, I64, U64 };

void write_result(Wave& w, const Inst& in, uint64_t result, bool writes_exec) {
  result &= w.exec();
  write_mask(w, in, result);
  if (writes_exec) w.set_exec(result);
}

template <Type T, int C, bool X>
void compare(Wave& w, const Inst& in) {
  uint64_t result = 0;
  if constexpr (T == Type::F32) {
    float a[kMaxLanes], b[kMaxLanes];
    fetch_f32(w, in, 0, a);
    fetch_f32(w, in, 1, b);
    for (int l = 0; l < w.lanes; ++l) result |= uint64_t{float_condition(C, a[l], b[l])} << l;
  } else if constexpr (T == Type::F64) {
    double a[kMaxLanes], b[kMaxLanes];
    fetch_f64(w, in, 0, a);
    fetch_f64(w, in, 1, b);
    for (int l = 0; l < w.lanes; ++l) result |= uint64_t{float_condition(C, a[l], b[l])} << l;
  } else if constexpr (T == Type::I64 || T == Type::U64) {
    uint64_t a[kMaxLanes], b[kMaxLanes];
    fetch64(w, in, 0, a, false);
    fetch64(w, in, 1, b, false);
    for (int l = 0; l < w.lanes; ++l) {
      bool r = T == Type::I64 ? float_condition(C, static_cast<int64_t>(a[l]), static_cast<int64_t>(b[l])) : float_condition(C, a[l], b[l]);
      result |= uint64_t{r} << l;
    }
  } else {
    uint32_t a[kMaxLanes], b[kMaxLanes];
    fetch(w, in, 0, a);
    fetch(w, in, 1, b);
    for (int l = 0; l < w.lanes; ++l) {
      bool r;
      if constexpr (T == Type::F16) {
        uint32_t x = a[l], y = b[l];
        if (in.abs & 1) x &= 0x7fff;
        if (in.abs & 2) y &= 0x7fff;
        if (in.neg & 1) x ^= 0x8000;
        if (in.neg & 2) y ^= 0x8000;
        r = float_condition(C, half_to_float(static_cast<uint16_t>(x)), half_to_float(static_cast<uint16_t>(y)));
      } else if constexpr (T == Type::I16) {
        r = float_condition(C, static_cast<int16_t>(a[l]), static_cast<int16_t>(b[l]));
      } else if constexpr (T == Type::U16) {
        r = float_condition(C, static_cast<uint16_t>(a[l]), static_cast<uint16_t>(b[l]));
      } else if constexpr (T == Type::I32) {
        r = float_condition(C, static_cast<int32_t>(a[l]), static_cast<int32_t>(b[l]));
      } else {
        r = float_condition(C, a[l], b[l]);
      }
      result |= uint64_t{r} << l;
    }
  }
  write_result(w, in, result, X);
}

// The class bit of x: 0 signaling NaN, 1 quiet NaN, 2 -inf, 3 -normal, 4 -denormal, 5 -0,
// 6 +0, 7 +denormal, 8 +normal, 9 +inf.
template <class T>
int float_class(T x, bool signaling) {
  if (std::isnan(x)) return signaling ? 0 : 1;
  const bool neg = std::signbit(x);
  switch (std::fpclassify(x)) {
    case FP_INFINITE: return neg ? 2 : 9;
    case FP_ZERO: return neg ? 5 : 6;
    case FP_SUBNORMAL: return neg ? 4 : 7;
    default: return neg ? 3 : 8;
  }
}

template <int Bits, bool X>
void compare_class(Wave& w, const Inst& in) {
  uint32_t mask[kMaxLanes];
  fetch(w, in, 1, mask);
  uint64_t result = 0;
  if constexpr (Bits == 64) {
    uint64_t a[kMaxLanes];
    fetch64(w, in, 0, a, true);
    for (int l = 0; l < w.lanes; ++l) {
      uint64_t x = a[l];
      if (in.abs & 1) x &= ~(uint64_t{1} << 63);
      if (in.neg & 1) x ^= uint64_t{1} << 63;
      const bool quiet = (x >> 51) & 1;
      result |= uint64_t{(mask[l] >> float_class(as_double(x), !quiet)) & 1} << l;
    }
  } else {
    uint32_t a[kMaxLanes];
    fetch(w, in, 0, a);
    for (int l = 0; l < w.lanes; ++l) {
      uint32_t x = a[l];
      const uint32_t sign = Bits == 32 ? 0x80000000u : 0x8000u;
      if (in.abs & 1) x &= ~sign;
      if (in.neg & 1) x ^= sign;
      const float f = Bits == 32 ? as_float(x) : half_to_float(static_cast<uint16_t>(x));
      const bool quiet = Bits == 32 ? (x >> 22) & 1 : (x >> 9) & 1;
      result |= uint64_t{(mask[l] >> float_class(f, !quiet)) & 1} << l;
    }
  }
  write_result(w, in, result, X);
}

template <Type T, bool X, int... C>
void add_type(OpTable& t, const char* const* conds, const char* type, std::integer_sequence<int, C...>) {
  static std::deque<std::string> names;  // the table's keys view these; a deque never moves them
  ((names.push_back(std::string(X ? "v_cmpx_" : "v_cmp_") + conds[C] + "_" + type), t[names.back()] = compare<T, C, X>), ...);
}

}  // namespace

void add_compare_ops(OpTable& t) {
  static const char* const float_conds[] = {"f", "lt", "eq", "le", "gt", "lg", "ge", "o", "u", "nge", "nlg", "ngt", "nle", "neq", "nlt", "tru"};
  static const char* const int_conds[] = {"f", "lt", "eq", "le", "gt", "ne", "ge", "t"};
  auto floats = std::make_integer_sequence<int, 16>();
  auto ints = std::make_integer_sequence<int, 8>();
  add_type<Type::F16, false>(t, float_conds, "f16", floats);
  add_type<Type::F32, false>(t, float_conds, "f32", floats);
  add_type<Type::F64, false>(t, float_conds, "f64", floats);
  add_type<Type::F16, true>(t, float_conds, "f16", floats);
  add_type<Type::F32, true>(t, float_conds, "f32", floats);
  add_type<Type::F64, true>(t, float_conds, "f64", floats);
  add_type<Type::I16, false>(t, int_conds, "i16", ints);
  add_type<Type::U16, false>(t, int_conds, "u16", ints);
  add_type<Type::I32, false>(t, int_conds, "i32", ints);
  add_type<Type::U32, false>(t, int_conds, "u32", ints);
  add_type<Type::I64, false>(t, int_conds, "i64", ints);
  add_type<Type::U64, false>(t, int_conds, "u64", ints);
  add_type<Type::I16, true>(t, int_conds, "i16", ints);
  add_type<Type::U16, true>(t, int_conds, "u16", ints);
  add_type<Type::I32, true>(t, int_conds, "i32", ints);
  add_type<Type::U32, true>(t, int_conds, "u32", ints);
  add_type<Type::I64, true>(t, int_conds, "i64", ints);
  add_type<Type::U64, true>(t, int_conds, "u64", ints);
  t["v_cmp_class_f16"] = compare_class<16, false>;
  t["v_cmp_class_f32"] = compare_class<32, false>;
  t["v_cmp_class_f64"] = compare_class<64, false>;
  t["v_cmpx_class_f16"] = compare_class<16, true>;
  t["v_cmpx_class_f32"] = compare_class<32, true>;
  t["v_cmpx_class_f64"] = compare_class<64, true>;
}

}  // namespace lathe::amd::emu
