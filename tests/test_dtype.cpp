// Type promotion, host float16/bfloat16 rounding, and the same rounding on every backend.
#include <cstring>

#include "test_util.h"

namespace lathe::test {
namespace {

float f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TEST(DType, Promotion) {
  EXPECT_EQ(promote(DType::Bool, DType::Int32), DType::Int32);
  EXPECT_EQ(promote(DType::UInt8, DType::Int32), DType::Int32);
  EXPECT_EQ(promote(DType::Int32, DType::Int64), DType::Int64);
  EXPECT_EQ(promote(DType::Int32, DType::UInt32), DType::Int64);
  EXPECT_EQ(promote(DType::Int64, DType::Float16), DType::Float16);
  EXPECT_EQ(promote(DType::Float16, DType::BFloat16), DType::Float32);
  EXPECT_EQ(promote(DType::BFloat16, DType::Float32), DType::Float32);
  EXPECT_EQ(dtype_from_name("bf16"), DType::BFloat16);
  EXPECT_THROW(dtype_from_name("float64x"), Error);
}

TEST(DType, HalfRoundsToNearestEven) {
  EXPECT_EQ(float_to_half_bits(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half_bits(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65519.0f), 0x7bff);
  EXPECT_EQ(float_to_half_bits(65520.0f), 0x7c00);           // rounds up to infinity
  EXPECT_EQ(float_to_half_bits(1.0f + 1.0f / 2048), 0x3c00);  // tie, to even
  EXPECT_EQ(float_to_half_bits(1.0f + 3.0f / 2048), 0x3c02);  // tie, to even (up)
  EXPECT_EQ(float_to_half_bits(5.9604645e-8f), 0x0001);      // smallest subnormal
  EXPECT_EQ(float_to_half_bits(2.9802322e-8f), 0x0000);      // half of it: tie to even zero
  EXPECT_EQ(float_to_half_bits(8.940697e-8f), 0x0002);       // 1.5 ulp: tie to even (2)
  EXPECT_EQ(float_to_half_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half_bits(f32(0x7fc00000)) & 0x7e00, 0x7e00);  // NaN stays NaN
  for (uint32_t h = 0; h < 0x7c00; h += 7) EXPECT_EQ(float_to_half_bits(half_bits_to_float(static_cast<uint16_t>(h))), h);
}

TEST(DType, BFloat16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bfloat16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bfloat16_bits(f32(0x3f808000)), 0x3f80);  // tie, to even
  EXPECT_EQ(float_to_bfloat16_bits(f32(0x3f818000)), 0x3f82);  // tie, to even (up)
  EXPECT_EQ(float_to_bfloat16_bits(f32(0x3f808001)), 0x3f81);
  EXPECT_EQ(float_to_bfloat16_bits(f32(0x7f7fffff)), 0x7f80);  // overflow to infinity
  EXPECT_TRUE(std::isnan(bfloat16_bits_to_float(float_to_bfloat16_bits(f32(0x7fc00001)))));
}

class DTypeOnDevice : public Conformance {};
LATHE_CONFORMANCE(DTypeOnDevice);

TEST_P(DTypeOnDevice, CastsRoundLikeTheHost) {
  std::vector<float> v = {1.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65519.0f, 65520.0f, 5.9604645e-8f, 2.9802322e-8f,
                          8.940697e-8f, -3.14159f, 1e-3f, f32(0x3f808000), f32(0x3f818000), f32(0x3f808001), 0.0f, -0.0f};
  std::uniform_real_distribution<float> dist(-100, 100);
  for (int i = 0; i < 500; ++i) v.push_back(dist(rng) * (i % 2 ? 1e-4f : 1.0f));
  Tensor t = Tensor::from_vector(v, {static_cast<int64_t>(v.size())});
  // Computed on the device (x * 1 keeps a kernel between the cast and the store).
  std::vector<float> h = (t * 1.0).cast(DType::Float16).cast(DType::Float32).to_vector<float>();
  std::vector<float> b = (t * 1.0).cast(DType::BFloat16).cast(DType::Float32).to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(h[i], half_bits_to_float(float_to_half_bits(v[i]))) << v[i];
    EXPECT_EQ(b[i], bfloat16_bits_to_float(float_to_bfloat16_bits(v[i]))) << v[i];
  }
}

TEST_P(DTypeOnDevice, IntegerAndBoolCasts) {
  Tensor f = Tensor::from_vector(std::vector<float>{-2.7f, -0.5f, 0.0f, 0.5f, 2.7f, 300.0f}, {6});
  EXPECT_EQ(f.cast(DType::Int32).to_vector<int32_t>(), (std::vector<int32_t>{-2, 0, 0, 0, 2, 300}));  // truncation
  EXPECT_EQ(f.cast(DType::Bool).to_vector<bool>(), (std::vector<bool>{true, true, false, true, true, true}));
  EXPECT_EQ(f.cast(DType::Int64).cast(DType::Float32).to_vector<float>(), (std::vector<float>{-2, 0, 0, 0, 2, 300}));
  Tensor i = Tensor::from_vector(std::vector<int32_t>{-1, 0, 255, 256}, {4}, DType::Int32);
  EXPECT_EQ(i.cast(DType::UInt8).to_vector<uint8_t>(), (std::vector<uint8_t>{255, 0, 255, 0}));
  EXPECT_EQ(i.cast(DType::Float16).to_vector<float>(), (std::vector<float>{-1, 0, 255, 256}));
  Tensor bits = Tensor::from_vector(std::vector<float>{1.0f, -2.0f}, {2}).bitcast(DType::UInt32);
  EXPECT_EQ(bits.to_vector<uint32_t>(), (std::vector<uint32_t>{0x3f800000u, 0xc0000000u}));
  EXPECT_EQ(bits.bitcast(DType::Float32).to_vector<float>(), (std::vector<float>{1.0f, -2.0f}));
}

}  // namespace
}  // namespace lathe::test
