// Element types: names, sizes, promotion and host conversions.
#include "lathe/dtype.h"

#include <cstring>

#include "lathe/error.h"

namespace lathe {

size_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::Bool: case DType::UInt8: return 1;
    case DType::Float16: case DType::BFloat16: return 2;
    case DType::Int32: case DType::UInt32: case DType::Float32: return 4;
    case DType::Int64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool: return "bool";
    case DType::UInt8: return "uint8";
    case DType::Int32: return "int32";
    case DType::UInt32: return "uint32";
    case DType::Int64: return "int64";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float32: return "float32";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  static const std::pair<const char*, DType> names[] = {
      {"bool", DType::Bool},       {"uint8", DType::UInt8},     {"int32", DType::Int32},
      {"uint32", DType::UInt32},   {"int64", DType::Int64},     {"float16", DType::Float16},
      {"half", DType::Float16},    {"fp16", DType::Float16},    {"bfloat16", DType::BFloat16},
      {"bf16", DType::BFloat16},   {"float32", DType::Float32}, {"float", DType::Float32},
      {"fp32", DType::Float32}};
  for (auto& [n, d] : names)
    if (name == n) return d;
  throw Error("unknown dtype '" + name +
              "': use one of bool, uint8, int32, uint32, int64, float16, bfloat16, float32");
}

bool is_float(DType d) { return d == DType::Float16 || d == DType::BFloat16 || d == DType::Float32; }
bool is_int(DType d) { return d == DType::UInt8 || d == DType::Int32 || d == DType::UInt32 || d == DType::Int64; }
bool is_unsigned(DType d) { return d == DType::Bool || d == DType::UInt8 || d == DType::UInt32; }

DType promote(DType a, DType b) {
  if (a == b) return a;
  if (is_float(a) && is_float(b)) return DType::Float32;  // f16+bf16, or either with f32
  if (is_float(a) != is_float(b)) return is_float(a) ? a : b;
  if (a == DType::Bool || b == DType::Bool) return a == DType::Bool ? b : a;
  // Two different integer types: the wider wins; uint32 with int32 needs int64.
  if ((a == DType::UInt32 && b == DType::Int32) || (a == DType::Int32 && b == DType::UInt32)) return DType::Int64;
  return static_cast<uint8_t>(a) > static_cast<uint8_t>(b) ? a : b;
}

static uint32_t bits_of(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static float float_of(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

uint16_t float_to_half_bits(float value) {
  uint32_t x = bits_of(value);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (absx < 0x38800000u) {  // result is subnormal or zero: scale into the 2^-24 grid, round to even
    float scaled = float_of(absx) * 16777216.0f;  // exact: multiplies by 2^24
    uint32_t q = static_cast<uint32_t>(scaled);
    float rem = scaled - static_cast<float>(q);
    if (rem > 0.5f || (rem == 0.5f && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t mant_round = absx + 0xfffu + ((absx >> 13) & 1u);  // round to nearest even on 13 dropped bits
  return static_cast<uint16_t>(sign | ((mant_round - 0x38000000u) >> 13));
}

float half_bits_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) return float_of(sign) + (sign ? -1.0f : 1.0f) * static_cast<float>(mant) * 5.9604644775390625e-8f;
  if (exp == 31) return float_of(sign | 0x7f800000u | (mant << 13));
  return float_of(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t float_to_bfloat16_bits(float value) {
  uint32_t x = bits_of(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float bfloat16_bits_to_float(uint16_t bits) { return float_of(static_cast<uint32_t>(bits) << 16); }

}  // namespace lathe
