// Random numbers from Threefry-2x32 (20 rounds), written with integer tensor ops so that every
// backend computes the same bits: element i of a call draws block (i, call) under key (seed).
#include <atomic>
#include <cmath>
#include <numbers>

#include "lathe/tensor.h"
#include "tensor_impl.h"

namespace lathe {
namespace {

std::atomic<uint64_t> g_seed{0x5eed5eedULL};
std::atomic<uint64_t> g_calls{0};

Tensor rotl(const Tensor& x, int r) { return x.shl(r).bitwise_or(x.shr(32 - r)); }

// 32 random bits per element of `shape`. The key and the call number travel as data, so every
// call runs the same compiled kernel.
Tensor random_bits(const Shape& shape, Device* device) {
  uint64_t seed = g_seed.load();
  uint64_t call = g_calls.fetch_add(1);
  int64_t n = numel(shape);
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  Tensor params = Tensor::from_vector(std::vector<uint32_t>{k0, k1, k0 ^ k1 ^ 0x1BD11BDAu, static_cast<uint32_t>(call)}, {4},
                                      DType::UInt32, device);
  Tensor x0 = Tensor::arange(0, static_cast<double>(n), 1, DType::Int32, device).cast(DType::UInt32);
  auto param = [&](int i) { return params.select(0, i).broadcast_to(x0.shape()); };
  const Tensor ks[3] = {param(0), param(1), param(2)};
  static const int rot[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  Tensor x1 = param(3) + ks[1];
  x0 = x0 + ks[0];
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) {
      x0 = x0 + x1;
      x1 = rotl(x1, rot[(i % 2) * 4 + j]).bitwise_xor(x0);
    }
    x0 = x0 + ks[(i + 1) % 3];
    x1 = x1 + ks[(i + 2) % 3] + Scalar(static_cast<long long>(i + 1));
  }
  return x0.reshape(shape);
}

}  // namespace

void Tensor::manual_seed(uint64_t seed) {
  g_seed = seed;
  g_calls = 0;
}

std::pair<uint64_t, uint64_t> Tensor::random_state() { return {g_seed.load(), g_calls.load()}; }
void Tensor::set_random_state(std::pair<uint64_t, uint64_t> state) {
  g_seed = state.first;
  g_calls = state.second;
}

Tensor Tensor::rand(const Shape& shape, DType dtype, Device* device) {
  check(is_float(dtype), std::string("rand: dtype must be a float type, got ") + dtype_name(dtype));
  device = resolve(device);
  // The top 24 bits, scaled: exactly representable in float32, uniform on [0, 1).
  Tensor bits = random_bits(shape, device).shr(8).cast(DType::Float32);
  return (bits * (1.0 / 16777216.0)).cast(dtype);
}

Tensor Tensor::randn(const Shape& shape, DType dtype, Device* device) {
  check(is_float(dtype), std::string("randn: dtype must be a float type, got ") + dtype_name(dtype));
  // Box-Muller on two independent uniform draws; 1 - u lies in (0, 1], so the log is finite.
  Tensor u1 = rand(shape, DType::Float32, device), u2 = rand(shape, DType::Float32, device);
  Tensor r = ((1.0 - u1).log() * -2.0).sqrt();
  return (r * (u2 * (2 * std::numbers::pi)).cos()).cast(dtype);
}

Tensor Tensor::randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Device* device) {
  check(high > low, "randint: high (" + std::to_string(high) + ") must be greater than low (" + std::to_string(low) + ")");
  check(!is_float(dtype) && dtype != DType::Bool, std::string("randint: dtype must be an integer type, got ") + dtype_name(dtype));
  check(high - low <= (1LL << 24), "randint: ranges wider than 2^24 are not supported");
  Tensor u = rand(shape, DType::Float32, device);
  return (u * static_cast<double>(high - low)).floor().cast(DType::Int64).add(
             Tensor::full(shape, static_cast<long long>(low), DType::Int64, u.device())).cast(dtype);
}

}  // namespace lathe
