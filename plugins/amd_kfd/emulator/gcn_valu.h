// How vector instructions read and write lanes: sources as 32- or 64-bit rows (VGPRs, scalar
// broadcasts, literals, SDWA selections, float input modifiers), results written under EXEC
// (clamp, output modifier, denormal flushing, SDWA destinations), and the templates that turn a
// per-lane function into an executor.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "gcn_wave.h"

namespace lathe::amd::emu {

inline float as_float(uint32_t x) { return std::bit_cast<float>(x); }
inline uint32_t as_bits(float x) { return std::bit_cast<uint32_t>(x); }
inline double as_double(uint64_t x) { return std::bit_cast<double>(x); }
inline uint64_t as_bits(double x) { return std::bit_cast<uint64_t>(x); }

inline float flush(float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; }
inline double flush(double x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0, x) : x; }

// SDWA: the selected byte or word of x, zero- or sign-extended.
inline uint32_t select_part(uint32_t x, uint8_t sel, bool sext) {
  if (sel >= 6) return x;
  const int bits = sel < 4 ? 8 : 16, shift = sel < 4 ? 8 * sel : 16 * (sel - 4);
  const uint32_t part = (x >> shift) & ((1u << bits) - 1);
  return sext ? static_cast<uint32_t>(static_cast<int32_t>(part << (32 - bits)) >> (32 - bits)) : part;
}

inline void fetch(const Wave& w, const Inst& in, int i, uint32_t* out) {
  const Operand& o = in.src[i];
  if (o.kind == Operand::Vector) {
    std::memcpy(out, w.v[o.index], sizeof(uint32_t) * static_cast<size_t>(w.lanes));
  } else {
    const uint32_t x = w.value(o);
    for (int l = 0; l < w.lanes; ++l) out[l] = x;
  }
  if (in.sdwa.on && i < 2 && (in.sdwa.sel[i] < 6))
    for (int l = 0; l < w.lanes; ++l) out[l] = select_part(out[l], in.sdwa.sel[i], in.sdwa.sext[i]);
}

inline void fetch64(const Wave& w, const Inst& in, int i, uint64_t* out, bool f64) {
  const Operand& o = in.src[i];
  if (o.kind == Operand::Vector) {
    for (int l = 0; l < w.lanes; ++l) out[l] = w.v[o.index][l] | uint64_t{w.v[o.index + 1][l]} << 32;
  } else {
    const uint64_t x = w.value64(o, f64);
    for (int l = 0; l < w.lanes; ++l) out[l] = x;
  }
}

// Float sources with the ABS and NEG modifiers and, in a flushing denormal mode, input flushing.
inline void fetch_f32(const Wave& w, const Inst& in, int i, float* out) {
  uint32_t* bits = reinterpret_cast<uint32_t*>(out);
  fetch(w, in, i, bits);
  const uint32_t clear = (in.abs >> i) & 1 ? 0x7fffffffu : ~0u, flip = (in.neg >> i) & 1 ? 0x80000000u : 0u;
  for (int l = 0; l < w.lanes; ++l) bits[l] = (bits[l] & clear) ^ flip;
  if (w.ctx->flush_f32)
    for (int l = 0; l < w.lanes; ++l) out[l] = flush(out[l]);
}

inline void fetch_f64(const Wave& w, const Inst& in, int i, double* out) {
  uint64_t* bits = reinterpret_cast<uint64_t*>(out);
  fetch64(w, in, i, bits, true);
  const uint64_t clear = (in.abs >> i) & 1 ? ~(uint64_t{1} << 63) : ~uint64_t{0}, flip = (in.neg >> i) & 1 ? uint64_t{1} << 63 : 0;
  for (int l = 0; l < w.lanes; ++l) bits[l] = (bits[l] & clear) ^ flip;
  if (w.ctx->flush_f64_f16)
    for (int l = 0; l < w.lanes; ++l) out[l] = flush(out[l]);
}

// Writes active lanes of the vector destination (an SDWA destination merges its selection).
inline void store(Wave& w, const Inst& in, const uint32_t* d) {
  uint32_t* row = w.v[in.dst.index];
  const uint64_t exec = w.exec();
  if (!in.sdwa.on || in.sdwa.dst_sel >= 6) {
    for (int l = 0; l < w.lanes; ++l)
      if (exec >> l & 1) row[l] = d[l];
    return;
  }
  const uint8_t sel = in.sdwa.dst_sel;
  const int bits = sel < 4 ? 8 : 16, shift = sel < 4 ? 8 * sel : 16 * (sel - 4);
  const uint32_t mask = ((1u << bits) - 1) << shift;
  for (int l = 0; l < w.lanes; ++l) {
    if (!(exec >> l & 1)) continue;
    uint32_t part = (d[l] << shift) & mask;
    if (in.sdwa.dst_unused == 2) row[l] = (row[l] & ~mask) | part;
    else if (in.sdwa.dst_unused == 1 && shift + bits < 32 && ((part >> (shift + bits - 1)) & 1)) row[l] = part | ~((1u << (shift + bits)) - 1);
    else row[l] = part;
  }
}

inline void store64(Wave& w, const Inst& in, const uint64_t* d) {
  const uint64_t exec = w.exec();
  for (int l = 0; l < w.lanes; ++l)
    if (exec >> l & 1) {
      w.v[in.dst.index][l] = static_cast<uint32_t>(d[l]);
      w.v[in.dst.index + 1][l] = static_cast<uint32_t>(d[l] >> 32);
    }
}

// Float results: the output modifier (x2, x4, /2), clamp to [0, 1], then output flushing.
inline float finish(const Wave& w, const Inst& in, float x) {
  if (in.omod) x *= in.omod == 1 ? 2.0f : in.omod == 2 ? 4.0f : 0.5f;
  if (in.clamp) x = std::isnan(x) ? 0.0f : std::fmin(std::fmax(x, 0.0f), 1.0f);
  return w.ctx->flush_f32 ? flush(x) : x;
}
inline double finish(const Wave& w, const Inst& in, double x) {
  if (in.omod) x *= in.omod == 1 ? 2.0 : in.omod == 2 ? 4.0 : 0.5;
  if (in.clamp) x = std::isnan(x) ? 0.0 : std::fmin(std::fmax(x, 0.0), 1.0);
  return w.ctx->flush_f64_f16 ? flush(x) : x;
}

// Executors from per-lane functions: N sources of 32-bit integers or floats, or 64-bit values.
template <int N, auto F>
void int_op(Wave& w, const Inst& in) {
  uint32_t s[3][kMaxLanes], d[kMaxLanes];
  for (int i = 0; i < N; ++i) fetch(w, in, i, s[i]);
  for (int l = 0; l < w.lanes; ++l) {
    if constexpr (N == 1) d[l] = F(s[0][l]);
    else if constexpr (N == 2) d[l] = F(s[0][l], s[1][l]);
    else d[l] = F(s[0][l], s[1][l], s[2][l]);
  }
  store(w, in, d);
}

template <int N, auto F>
void float_op(Wave& w, const Inst& in) {
  float s[3][kMaxLanes];
  uint32_t d[kMaxLanes];
  for (int i = 0; i < N; ++i) fetch_f32(w, in, i, s[i]);
  for (int l = 0; l < w.lanes; ++l) {
    float r;
    if constexpr (N == 1) r = F(s[0][l]);
    else if constexpr (N == 2) r = F(s[0][l], s[1][l]);
    else r = F(s[0][l], s[1][l], s[2][l]);
    d[l] = as_bits(r);
  }
  if (in.omod || in.clamp || w.ctx->flush_f32)
    for (int l = 0; l < w.lanes; ++l) d[l] = as_bits(finish(w, in, as_float(d[l])));
  store(w, in, d);
}

template <int N, auto F>
void double_op(Wave& w, const Inst& in) {
  double s[3][kMaxLanes];
  uint64_t d[kMaxLanes];
  for (int i = 0; i < N; ++i) fetch_f64(w, in, i, s[i]);
  for (int l = 0; l < w.lanes; ++l) {
    double r;
    if constexpr (N == 1) r = F(s[0][l]);
    else if constexpr (N == 2) r = F(s[0][l], s[1][l]);
    else r = F(s[0][l], s[1][l], s[2][l]);
    d[l] = as_bits(finish(w, in, r));
  }
  store64(w, in, d);
}

// The mask destination of a compare or carry: VCC, or the SGPR pair VOP3 names.
inline void write_mask(Wave& w, const Inst& in, uint64_t mask) {
  if (in.sdst.kind == Operand::None || in.sdst.index == reg::kVccLo) w.set_vcc(mask);
  else w.write_lanes(in.sdst.index, mask);
}

}  // namespace lathe::amd::emu
