// Shared helpers: the conformance fixture (one instantiation per usable backend) and
// comparisons against float64 references with explicit tolerances.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>

#include "lathe/backends.h"
#include "lathe/tensor.h"
#include "reference.h"

namespace lathe::test {

// Tolerances per dtype: |got - want| <= atol + rtol * |want|.
struct Tol {
  double rtol, atol;
};
inline Tol tol_for(DType d) {
  switch (d) {
    case DType::Float16: return {2e-3, 2e-3};
    case DType::BFloat16: return {1.6e-2, 1.6e-2};
    case DType::Float32: return {2e-5, 2e-6};
    default: return {0, 0};
  }
}

inline ::testing::AssertionResult close(const Tensor& t, const ref::Array& want, Tol tol) {
  if (t.shape() != want.shape)
    return ::testing::AssertionFailure() << "shape " << to_string(t.shape()) << " != expected " << to_string(want.shape);
  std::vector<float> got = t.cast(DType::Float32).to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) {
    double w = want.v[i], g = got[i];
    bool ok = (std::isnan(w) && std::isnan(g)) || (std::isinf(w) && g == w) || std::abs(g - w) <= tol.atol + tol.rtol * std::abs(w);
    if (!ok)
      return ::testing::AssertionFailure() << "element " << i << " of " << to_string(want.shape) << ": got " << g
                                           << ", want " << w << " (rtol " << tol.rtol << ", atol " << tol.atol << ")";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult close(const Tensor& t, const ref::Array& want) { return close(t, want, tol_for(t.dtype())); }

// The message of the lathe::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    set_default_device(GetParam());
    rng.seed(1234);
  }
  std::mt19937 rng;
};

inline std::vector<std::string> backends_under_test() {
  auto b = usable_backends();
  return b;
}

#define LATHE_CONFORMANCE(Suite)                                                                    \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite, ::testing::ValuesIn(::lathe::test::backends_under_test()), \
                           [](const auto& info) { return info.param; });                             \
  GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Suite)

}  // namespace lathe::test
