// Element types, their sizes and the promotion rules used when two types meet in one op.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lathe {

// Ordered from narrowest to widest; promotion relies on this order within a kind.
enum class DType : uint8_t { Bool, UInt8, Int32, UInt32, Int64, Float16, BFloat16, Float32 };

size_t itemsize(DType dtype);
const char* dtype_name(DType dtype);
DType dtype_from_name(const std::string& name);  // "float32", "bf16", ... ; throws on unknown
bool is_float(DType dtype);
bool is_int(DType dtype);       // integer kinds, bool excluded
bool is_unsigned(DType dtype);  // bool, uint8, uint32

// The type both operands are converted to, as in PyTorch: bool < integers < floats;
// float16 with bfloat16 gives float32; uint8 with a signed int gives the signed one.
DType promote(DType a, DType b);

// The default type of a float created from a host scalar or by rand().
constexpr DType kDefaultFloat = DType::Float32;

// Round-to-nearest-even conversions, shared by the host and the tests.
uint16_t float_to_half_bits(float value);
float half_bits_to_float(uint16_t bits);
uint16_t float_to_bfloat16_bits(float value);
float bfloat16_bits_to_float(uint16_t bits);

}  // namespace lathe
