// The opencl backend's own failure paths (its numerics are covered by the conformance suites).
#include <filesystem>

#include "lathe/device.h"
#include "test_util.h"

namespace lathe::test {
namespace {

bool opencl_usable() {
  auto b = usable_backends();
  return std::find(b.begin(), b.end(), "opencl") != b.end();
}

TEST(OpenCL, BuildFailureShowsTheLogAndTheSourceFile) {
  if (!opencl_usable()) GTEST_SKIP() << "no OpenCL platform here";
  Device* d = get_device("opencl:0");
  Kernel k;
  k.name = "not-an-identifier";  // renders as invalid OpenCL C
  k.params.push_back({DType::Float32, 1, true});
  std::string msg = error_of([&] { d->compile(k); });
  EXPECT_NE(msg.find("failed to build"), std::string::npos) << msg;
  auto at = msg.find("source: ");
  ASSERT_NE(at, std::string::npos) << msg;
  std::string path = msg.substr(at + 8, msg.find(')', at) - at - 8);
  EXPECT_TRUE(std::filesystem::exists(path)) << path;
}

TEST(OpenCL, DeviceAndPlatformSelectionErrors) {
  if (!opencl_usable()) GTEST_SKIP() << "no OpenCL platform here";
  EXPECT_NE(error_of([] { get_device("opencl:57"); }).find("out of range"), std::string::npos);
  EXPECT_NE(error_of([] { get_device("opencl:3", {{"platform", "NoSuchVendor"}}); }).find("no device on a platform matching 'NoSuchVendor'"),
            std::string::npos);
  EXPECT_NE(error_of([] { get_device("opencl:4", {{"colour", "blue"}}); }).find("unknown option 'colour'"), std::string::npos);
  EXPECT_NE(error_of([] { get_device("opencl:5", {{"device", "NoSuchChip"}}); }).find("named like 'NoSuchChip'"), std::string::npos);
}

// Kernel objects keep their arguments per buffer list: more lists than are kept, and lists
// coming back in another order, still each compute on their own buffers.
TEST(OpenCL, LaunchesOnManyBufferListsUseTheirOwnBuffers) {
  if (!opencl_usable()) GTEST_SKIP() << "no OpenCL platform here";
  Device* d = get_device("opencl:0");
  std::vector<Tensor> xs, ys;
  for (int k = 0; k < 80; ++k) xs.push_back(Tensor::full({1000}, static_cast<double>(k), DType::Float32, d).realize());
  for (int round = 0; round < 2; ++round) {
    ys.clear();
    for (int k = 0; k < 80; ++k) {
      int i = round == 0 ? k : 79 - k;
      ys.push_back((xs[static_cast<size_t>(i)] * 2 + 1).realize());
    }
    for (int k = 0; k < 80; ++k) {
      int i = round == 0 ? k : 79 - k;
      std::vector<float> v = ys[static_cast<size_t>(k)].to_vector<float>();
      ASSERT_EQ(v.front(), 2.0f * static_cast<float>(i) + 1) << "round " << round << ", list " << k;
      ASSERT_EQ(v.back(), 2.0f * static_cast<float>(i) + 1) << "round " << round << ", list " << k;
    }
  }
}

}  // namespace
}  // namespace lathe::test
