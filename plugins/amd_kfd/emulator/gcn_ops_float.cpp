// Vector float instructions: arithmetic, min/max with the ISA's NaN and signed-zero rules, the
// transcendental unit (which flushes denormals: the compiler scales around it), the division
// helpers (scale, fmas, fixup), rounding, frexp/ldexp and conversions.
#include <cmath>
#include <cstdint>
#include <limits>

#include "gcn_program.h"
#include "gcn_valu.h"

namespace lathe::amd::emu {

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return as_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) return std::copysign(std::ldexp(static_cast<float>(mant), -24), sign ? -1.0f : 1.0f);
  return as_float(sign | ((exp + 112) << 23) | (mant << 13));
}

// Round to nearest even (or toward zero), with overflow to infinity and denormal halves.
uint16_t float_to_half(float f, bool toward_zero) {
  const uint32_t x = as_bits(f), sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0));
  const int e = static_cast<int>(abs >> 23) - 127;
  if (e >= 16) return static_cast<uint16_t>(sign | (toward_zero ? 0x7bffu : 0x7c00u));
  const int shift = e >= -14 ? 13 : 13 + (-14 - e);  // half denormals keep fewer bits
  if (shift > 24) return static_cast<uint16_t>(sign);
  const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
  uint32_t kept = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
  if (!toward_zero && (rest > halfway || (rest == halfway && (kept & 1)))) ++kept;
  // kept holds the implicit bit, so a rounding carry moves into the exponent (up to infinity).
  const uint32_t h = e >= -14 ? (static_cast<uint32_t>(e + 14) << 10) + kept : kept;
  return static_cast<uint16_t>(sign | h);
}

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool signaling(float x) { return std::isnan(x) && !((as_bits(x) >> 22) & 1); }
float quiet(float x) { return as_float(as_bits(x) | 0x400000u); }

// IEEE-mode min and max: a signaling NaN gives a quiet NaN, one quiet NaN gives the other
// operand, and -0 < +0.
template <bool Max>
float min_max(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) {
    if (signaling(a) || signaling(b)) return quiet(std::isnan(a) ? a : b);
    return std::isnan(a) ? b : a;
  }
  if (a == b) return Max ? (std::signbit(a) ? b : a) : (std::signbit(a) ? a : b);
  return Max ? (a > b ? a : b) : (a < b ? a : b);
}
template <bool Max>
double min_max(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? (std::isnan(b) ? a : b) : a;
  if (a == b) return Max ? (std::signbit(a) ? b : a) : (std::signbit(a) ? a : b);
  return Max ? (a > b ? a : b) : (a < b ? a : b);
}
float med3(float a, float b, float c) {
  if (std::isnan(a) || std::isnan(b) || std::isnan(c)) return min_max<false>(min_max<false>(a, b), c);
  const float hi = min_max<true>(min_max<true>(a, b), c);
  if (hi == a) return min_max<true>(b, c);
  if (hi == b) return min_max<true>(a, c);
  return min_max<true>(a, b);
}

// The transcendental unit takes and gives no denormals.
float trans(float x) { return flush(x); }

int exponent(float x) { return static_cast<int>((as_bits(x) >> 23) & 0xff); }
int exponent(double x) { return static_cast<int>((as_bits(x) >> 52) & 0x7ff); }
bool denormal(float x) { return std::fpclassify(x) == FP_SUBNORMAL; }
bool denormal(double x) { return std::fpclassify(x) == FP_SUBNORMAL; }

// v_div_scale: scales the denominator or numerator of a division out of the denormal range;
// VCC tells v_div_fmas to scale the quotient back.
template <class T>
void div_scale(Wave& w, const Inst& in) {
  constexpr bool f32 = sizeof(T) == 4;
  constexpr int scale = f32 ? 64 : 128, near_max = f32 ? 96 : 768, tiny = f32 ? 23 : 53;
  T s[3][kMaxLanes];
  for (int i = 0; i < 3; ++i) {
    if constexpr (f32) fetch_f32(w, in, i, s[i]);
    else fetch_f64(w, in, i, s[i]);
  }
  uint64_t vcc = 0;
  T d[kMaxLanes];
  for (int l = 0; l < w.lanes; ++l) {
    const T s0 = s[0][l], s1 = s[1][l], s2 = s[2][l];
    // The ISA text tests 1/S1 as a double, which never is denormal for an f32; read as "1/S1 is
    // a denormal of this width" (as for f64), and with the denominator scaled down in the case
    // where the quotient is denormal too, the macro stays correctly rounded over the whole range.
    const bool rcp_denormal = denormal(static_cast<T>(T(1) / s1));
    bool v = false;
    T r = s0;
    if (s2 == 0 || s1 == 0) r = std::numeric_limits<T>::quiet_NaN();
    else if (exponent(s2) - exponent(s1) >= near_max) v = true, r = s0 == s1 ? std::ldexp(s0, scale) : s0;
    else if (denormal(s1)) r = std::ldexp(s0, scale);
    else if (rcp_denormal && denormal(static_cast<T>(s2 / s1))) v = true, r = s0 == s1 ? std::ldexp(s0, -scale) : s0;
    else if (rcp_denormal) r = std::ldexp(s0, -scale);
    else if (denormal(static_cast<T>(s2 / s1))) v = true, r = s0 == s2 ? std::ldexp(s0, scale) : s0;
    else if (exponent(s2) <= tiny) r = std::ldexp(s0, scale);
    d[l] = r;
    if (v) vcc |= uint64_t{1} << l;
  }
  if constexpr (f32) {
    uint32_t bits[kMaxLanes];
    for (int l = 0; l < w.lanes; ++l) bits[l] = as_bits(d[l]);
    store(w, in, bits);
  } else {
    uint64_t bits[kMaxLanes];
    for (int l = 0; l < w.lanes; ++l) bits[l] = as_bits(d[l]);
    store64(w, in, bits);
  }
  write_mask(w, in, vcc & w.exec());
}

template <class T>
void div_fmas(Wave& w, const Inst& in) {
  constexpr bool f32 = sizeof(T) == 4;
  T s[3][kMaxLanes];
  for (int i = 0; i < 3; ++i) {
    if constexpr (f32) fetch_f32(w, in, i, s[i]);
    else fetch_f64(w, in, i, s[i]);
  }
  const uint64_t vcc = w.vcc();
  uint32_t bits32[kMaxLanes];
  uint64_t bits64[kMaxLanes];
  for (int l = 0; l < w.lanes; ++l) {
    T r = std::fma(s[0][l], s[1][l], s[2][l]);
    if (vcc >> l & 1) r = std::ldexp(r, exponent(s[2][l]) > (f32 ? 127 : 1023) ? (f32 ? 64 : 128) : (f32 ? -64 : -128));
    r = finish(w, in, r);
    if constexpr (f32) bits32[l] = as_bits(r);
    else bits64[l] = as_bits(r);
  }
  if constexpr (f32) store(w, in, bits32);
  else store64(w, in, bits64);
}

// v_div_fixup: the quotient's special cases from the numerator (S2) and denominator (S1).
template <class T>
T div_fixup(T q, T den, T num) {
  const bool neg = std::signbit(den) != std::signbit(num);
  const T inf = std::numeric_limits<T>::infinity();
  if (std::isnan(den)) return den;
  if (std::isnan(num)) return num;
  if (den == 0 && num == 0) return -std::numeric_limits<T>::quiet_NaN();
  if (std::isinf(den) && std::isinf(num)) return -std::numeric_limits<T>::quiet_NaN();
  if (den == 0 || std::isinf(num)) return neg ? -inf : inf;
  if (std::isinf(den) || num == 0) return neg ? -T(0) : T(0);
  if (std::isnan(q)) return q;
  const int limit = sizeof(T) == 4 ? -150 : -1075, top = sizeof(T) == 4 ? 255 : 2047;
  if (exponent(num) - exponent(den) < limit) return neg ? -T(0) : T(0);
  if (exponent(den) == top) return neg ? -inf : inf;
  return neg ? -std::fabs(q) : std::fabs(q);
}

template <class T>
T fract(T x) {
  if (std::isinf(x)) return std::numeric_limits<T>::quiet_NaN();
  return std::fmin(x - std::floor(x), sizeof(T) == 4 ? T(0x1.fffffep-1f) : T(0x1.fffffffffffffp-1));
}

uint32_t f2i(double x, double lo, double hi) {
  if (std::isnan(x)) return 0;
  x = std::trunc(x);
  return x <= lo ? static_cast<uint32_t>(static_cast<int64_t>(lo)) : x >= hi ? static_cast<uint32_t>(static_cast<int64_t>(hi)) : static_cast<uint32_t>(static_cast<int64_t>(x));
}
uint32_t f2i32(double x) { return f2i(x, -2147483648.0, 2147483647.0); }
uint32_t f2u32(double x) { return f2i(x, 0.0, 4294967295.0); }

// Float source to integer or other-width result, and back.
template <auto F>
void from_f32(Wave& w, const Inst& in) {
  float a[kMaxLanes];
  uint32_t d[kMaxLanes];
  fetch_f32(w, in, 0, a);
  for (int l = 0; l < w.lanes; ++l) d[l] = F(a[l]);
  store(w, in, d);
}
template <auto F>
void to_f32(Wave& w, const Inst& in) {
  uint32_t a[kMaxLanes], d[kMaxLanes];
  fetch(w, in, 0, a);
  for (int l = 0; l < w.lanes; ++l) d[l] = as_bits(finish(w, in, F(a[l])));
  store(w, in, d);
}
template <auto F>
void from_f64(Wave& w, const Inst& in) {
  double a[kMaxLanes];
  uint32_t d[kMaxLanes];
  fetch_f64(w, in, 0, a);
  for (int l = 0; l < w.lanes; ++l) d[l] = F(a[l]);
  store(w, in, d);
}
template <auto F>
void to_f64(Wave& w, const Inst& in) {
  uint32_t a[kMaxLanes];
  uint64_t d[kMaxLanes];
  if constexpr (requires { F(0.0f); }) {
    float f[kMaxLanes];
    fetch_f32(w, in, 0, f);
    for (int l = 0; l < w.lanes; ++l) d[l] = as_bits(finish(w, in, F(f[l])));
  } else {
    fetch(w, in, 0, a);
    for (int l = 0; l < w.lanes; ++l) d[l] = as_bits(finish(w, in, F(a[l])));
  }
  store64(w, in, d);
}

}  // namespace

void add_vector_float_ops(OpTable& t) {
  t["v_add_f32"] = float_op<2, ([](float a, float b) { return a + b; })>;
  t["v_sub_f32"] = float_op<2, ([](float a, float b) { return a - b; })>;
  t["v_subrev_f32"] = float_op<2, ([](float a, float b) { return b - a; })>;
  t["v_mul_f32"] = float_op<2, ([](float a, float b) { return a * b; })>;
  t["v_mul_legacy_f32"] = float_op<2, ([](float a, float b) { return a == 0 || b == 0 ? 0.0f : a * b; })>;
  t["v_fma_f32"] = float_op<3, ([](float a, float b, float c) { return std::fma(a, b, c); })>;
  t["v_fmac_f32"] = [](Wave& w, const Inst& in) {  // D = S0 * S1 + D
    Inst three = in;
    three.src[2] = in.dst;
    float_op<3, ([](float a, float b, float c) { return std::fma(a, b, c); })>(w, three);
  };
  t["v_min_f32"] = float_op<2, ([](float a, float b) { return min_max<false>(a, b); })>;
  t["v_max_f32"] = float_op<2, ([](float a, float b) { return min_max<true>(a, b); })>;
  t["v_min3_f32"] = float_op<3, ([](float a, float b, float c) { return min_max<false>(min_max<false>(a, b), c); })>;
  t["v_max3_f32"] = float_op<3, ([](float a, float b, float c) { return min_max<true>(min_max<true>(a, b), c); })>;
  // gfx11: a max then a min, or a min then a max.
  t["v_maxmin_f32"] = float_op<3, ([](float a, float b, float c) { return min_max<false>(min_max<true>(a, b), c); })>;
  t["v_minmax_f32"] = float_op<3, ([](float a, float b, float c) { return min_max<true>(min_max<false>(a, b), c); })>;
  t["v_med3_f32"] = float_op<3, med3>;
  t["v_exp_f32"] = float_op<1, ([](float a) { return trans(std::exp2(trans(a))); })>;
  t["v_log_f32"] = float_op<1, ([](float a) { return trans(std::log2(trans(a))); })>;
  t["v_rcp_f32"] = t["v_rcp_iflag_f32"] = float_op<1, ([](float a) { return trans(1.0f / trans(a)); })>;
  t["v_rsq_f32"] = float_op<1, ([](float a) { return trans(static_cast<float>(1.0 / std::sqrt(static_cast<double>(trans(a))))); })>;
  t["v_sqrt_f32"] = float_op<1, ([](float a) { return trans(std::sqrt(trans(a))); })>;
  // sin and cos take revolutions: sin(2 pi x).
  t["v_sin_f32"] = float_op<1, ([](float a) {
    a = trans(a);
    return std::isinf(a) ? kNaN : trans(static_cast<float>(std::sin(6.283185307179586 * (static_cast<double>(a) - std::nearbyint(a)))));
  })>;
  t["v_cos_f32"] = float_op<1, ([](float a) {
    a = trans(a);
    return std::isinf(a) ? kNaN : trans(static_cast<float>(std::cos(6.283185307179586 * (static_cast<double>(a) - std::nearbyint(a)))));
  })>;
  t["v_trunc_f32"] = float_op<1, ([](float a) { return std::trunc(a); })>;
  t["v_ceil_f32"] = float_op<1, ([](float a) { return std::ceil(a); })>;
  t["v_floor_f32"] = float_op<1, ([](float a) { return std::floor(a); })>;
  t["v_rndne_f32"] = float_op<1, ([](float a) { return std::nearbyint(a); })>;
  t["v_fract_f32"] = float_op<1, fract<float>>;
  t["v_frexp_mant_f32"] = float_op<1, ([](float a) {
    int e;
    return std::isinf(a) || std::isnan(a) ? a : std::frexp(a, &e);
  })>;
  t["v_frexp_exp_i32_f32"] = from_f32<([](float a) {
    int e = 0;
    if (!std::isinf(a) && !std::isnan(a)) std::frexp(a, &e);
    return static_cast<uint32_t>(e);
  })>;
  t["v_ldexp_f32"] = [](Wave& w, const Inst& in) {
    float a[kMaxLanes];
    uint32_t e[kMaxLanes], d[kMaxLanes];
    fetch_f32(w, in, 0, a);
    fetch(w, in, 1, e);
    for (int l = 0; l < w.lanes; ++l) d[l] = as_bits(finish(w, in, std::ldexp(a[l], static_cast<int32_t>(e[l]))));
    store(w, in, d);
  };
  t["v_div_scale_f32"] = div_scale<float>;
  t["v_div_fmas_f32"] = div_fmas<float>;
  t["v_div_fixup_f32"] = float_op<3, div_fixup<float>>;

  t["v_add_f64"] = double_op<2, ([](double a, double b) { return a + b; })>;
  t["v_mul_f64"] = double_op<2, ([](double a, double b) { return a * b; })>;
  t["v_fma_f64"] = double_op<3, ([](double a, double b, double c) { return std::fma(a, b, c); })>;
  t["v_min_f64"] = double_op<2, ([](double a, double b) { return min_max<false>(a, b); })>;
  t["v_max_f64"] = double_op<2, ([](double a, double b) { return min_max<true>(a, b); })>;
  t["v_rcp_f64"] = double_op<1, ([](double a) { return 1.0 / a; })>;
  t["v_rsq_f64"] = double_op<1, ([](double a) { return 1.0 / std::sqrt(a); })>;
  t["v_sqrt_f64"] = double_op<1, ([](double a) { return std::sqrt(a); })>;
  t["v_trunc_f64"] = double_op<1, ([](double a) { return std::trunc(a); })>;
  t["v_ceil_f64"] = double_op<1, ([](double a) { return std::ceil(a); })>;
  t["v_floor_f64"] = double_op<1, ([](double a) { return std::floor(a); })>;
  t["v_rndne_f64"] = double_op<1, ([](double a) { return std::nearbyint(a); })>;
  t["v_fract_f64"] = double_op<1, fract<double>>;
  t["v_div_scale_f64"] = div_scale<double>;
  t["v_div_fmas_f64"] = div_fmas<double>;
  t["v_div_fixup_f64"] = double_op<3, div_fixup<double>>;
  t["v_ldexp_f64"] = [](Wave& w, const Inst& in) {
    double a[kMaxLanes];
    uint32_t e[kMaxLanes];
    uint64_t d[kMaxLanes];
    fetch_f64(w, in, 0, a);
    fetch(w, in, 1, e);
    for (int l = 0; l < w.lanes; ++l) d[l] = as_bits(finish(w, in, std::ldexp(a[l], static_cast<int32_t>(e[l]))));
    store64(w, in, d);
  };

  t["v_cvt_f32_i32"] = to_f32<([](uint32_t a) { return static_cast<float>(static_cast<int32_t>(a)); })>;
  t["v_cvt_f32_u32"] = to_f32<([](uint32_t a) { return static_cast<float>(a); })>;
  t["v_cvt_f32_ubyte0"] = to_f32<([](uint32_t a) { return static_cast<float>(a & 0xff); })>;
  t["v_cvt_f32_ubyte1"] = to_f32<([](uint32_t a) { return static_cast<float>((a >> 8) & 0xff); })>;
  t["v_cvt_f32_ubyte2"] = to_f32<([](uint32_t a) { return static_cast<float>((a >> 16) & 0xff); })>;
  t["v_cvt_f32_ubyte3"] = to_f32<([](uint32_t a) { return static_cast<float>(a >> 24); })>;
  t["v_cvt_f32_f16"] = to_f32<([](uint32_t a) { return half_to_float(static_cast<uint16_t>(a)); })>;
  t["v_cvt_i32_f32"] = from_f32<([](float a) { return f2i32(a); })>;
  t["v_cvt_u32_f32"] = from_f32<([](float a) { return f2u32(a); })>;
  t["v_cvt_rpi_i32_f32"] = from_f32<([](float a) { return f2i32(std::floor(static_cast<double>(a) + 0.5)); })>;
  t["v_cvt_flr_i32_f32"] = from_f32<([](float a) { return f2i32(std::floor(a)); })>;
  t["v_cvt_f16_f32"] = from_f32<([](float a) { return uint32_t{float_to_half(a, false)}; })>;
  t["v_cvt_pkrtz_f16_f32"] = [](Wave& w, const Inst& in) {
    float a[kMaxLanes], b[kMaxLanes];
    uint32_t d[kMaxLanes];
    fetch_f32(w, in, 0, a);
    fetch_f32(w, in, 1, b);
    for (int l = 0; l < w.lanes; ++l) d[l] = float_to_half(a[l], true) | uint32_t{float_to_half(b[l], true)} << 16;
    store(w, in, d);
  };
  t["v_cvt_f32_f64"] = from_f64<([](double a) { return as_bits(static_cast<float>(a)); })>;
  t["v_cvt_i32_f64"] = from_f64<([](double a) { return f2i32(a); })>;
  t["v_cvt_u32_f64"] = from_f64<([](double a) { return f2u32(a); })>;
  t["v_cvt_f64_f32"] = to_f64<([](float a) { return static_cast<double>(a); })>;
  t["v_cvt_f64_i32"] = to_f64<([](uint32_t a) { return static_cast<double>(static_cast<int32_t>(a)); })>;
  t["v_cvt_f64_u32"] = to_f64<([](uint32_t a) { return static_cast<double>(a); })>;
}

}  // namespace lathe::amd::emu
