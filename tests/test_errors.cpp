// Bad input throws lathe::Error naming the op and the shapes, before any kernel runs.
#include "lathe/runtime.h"
#include "test_util.h"

namespace lathe::test {
namespace {

void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  int64_t before = runtime_stats().kernels_run;
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    auto lower = [](std::string s) {
      for (auto& c : s) c = static_cast<char>(std::tolower(c));
      return s;
    };
    std::string msg = lower(e.what());
    for (auto& frag : fragments) EXPECT_NE(msg.find(lower(frag)), std::string::npos) << "'" << frag << "' missing in: " << e.what();
  }
  EXPECT_EQ(runtime_stats().kernels_run, before) << "a kernel ran before the error";
}

TEST(Errors, ShapesAxesDtypesAndSlices) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  expect_error([&] { a + b; }, {"add", "[2, 3]", "[4, 5]"});
  expect_error([&] { a.matmul(b); }, {"matmul", "[2, 3]", "[4, 5]"});
  expect_error([&] { a.sum({2}); }, {"sum", "axis 2"});
  expect_error([&] { a.reshape({4, 2}); }, {"reshape", "[2, 3]", "[4, 2]"});
  expect_error([&] { a.permute({0, 0}); }, {"permute"});
  expect_error([&] { a.select(1, 3); }, {"select", "index 3", "[2, 3]"});
  expect_error([&] { a.expand({3, 3}); }, {"expand", "[2, 3]", "[3, 3]"});
  expect_error([&] { a.bitwise_and(a); }, {"AND", "float32"});
  expect_error([&] { a.shrink({{0, 3}, {0, 3}}); }, {"SHRINK", "[2, 3]"});
  expect_error([&] { Tensor::cat({a, b}, 0); }, {"cat", "[2, 3]", "[4, 5]"});
  expect_error([&] { Tensor::zeros({2}, DType::Int32).requires_grad_(); }, {"requires_grad", "int32"});
  expect_error([&] { a.sum().backward(); }, {"backward", "requires grad"});
  expect_error([&] { a.backward(); }, {"backward", "[2, 3]"});
  expect_error([&] { a.item<float>(); }, {"item", "[2, 3]"});
  expect_error([&] { Tensor().shape(); }, {"undefined Tensor"});
}

}  // namespace
}  // namespace lathe::test
