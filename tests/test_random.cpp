// The counter-based generator: reproducible per seed on every backend, with the right moments.
#include "test_util.h"

namespace lathe::test {
namespace {

class Random : public Conformance {};
LATHE_CONFORMANCE(Random);

// Threefry-2x32-20 on the host, written from the published description, for cross-checking.
uint32_t rotl(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }
uint32_t threefry_x0(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1) {
  uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
  static const int rot[8] = {13, 15, 26, 6, 17, 29, 16, 24};
  uint32_t x0 = c0 + ks[0], x1 = c1 + ks[1];
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 4; ++j) {
      x0 += x1;
      x1 = rotl(x1, rot[(i % 2) * 4 + j]) ^ x0;
    }
    x0 += ks[(i + 1) % 3];
    x1 += ks[(i + 2) % 3] + static_cast<uint32_t>(i + 1);
  }
  return x0;
}

TEST_P(Random, SameSeedSameNumbersAndMatchesHostThreefry) {
  Tensor::manual_seed(42);
  std::vector<float> a = Tensor::rand({1000}).to_vector<float>();
  Tensor::manual_seed(42);
  std::vector<float> b = Tensor::rand({1000}).to_vector<float>();
  EXPECT_EQ(a, b);
  std::vector<float> c = Tensor::rand({1000}).to_vector<float>();
  EXPECT_NE(a, c);
  for (int i = 0; i < 1000; ++i) {
    float want = static_cast<float>(threefry_x0(static_cast<uint32_t>(i), 0, 42, 0) >> 8) / 16777216.0f;
    ASSERT_EQ(a[i], want) << i;
  }
}

TEST_P(Random, Moments) {
  Tensor::manual_seed(7);
  const int n = 200000;
  std::vector<float> u = Tensor::rand({n}).to_vector<float>();
  double mean = 0, var = 0;
  for (float x : u) {
    ASSERT_GE(x, 0.0f);
    ASSERT_LT(x, 1.0f);
    mean += x;
  }
  mean /= n;
  for (float x : u) var += (x - mean) * (x - mean);
  var /= n;
  EXPECT_NEAR(mean, 0.5, 0.005);
  EXPECT_NEAR(var, 1.0 / 12, 0.002);
  std::vector<float> g = Tensor::randn({n}).to_vector<float>();
  mean = var = 0;
  for (float x : g) mean += x;
  mean /= n;
  for (float x : g) var += (x - mean) * (x - mean);
  var /= n;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(var, 1.0, 0.02);
  std::vector<int32_t> r = Tensor::randint(-3, 4, {10000}).to_vector<int32_t>();
  std::vector<int> hist(7, 0);
  for (int32_t v : r) {
    ASSERT_GE(v, -3);
    ASSERT_LT(v, 4);
    hist[v + 3]++;
  }
  for (int h : hist) EXPECT_NEAR(h, 10000 / 7.0, 200);
}

}  // namespace
}  // namespace lathe::test
