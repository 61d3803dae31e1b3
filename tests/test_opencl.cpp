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

namespace lathe::test {
namespace {

// Buffers are sub-buffers of shared slabs: buffers of many sizes, freed and allocated again
// in between (pooled, returned to their slab, carved anew), each keep their own contents.
TEST(OpenCL, BuffersOfManySizesKeepTheirOwnContents) {
  if (!opencl_usable()) GTEST_SKIP() << "no OpenCL platform here";
  Device* d = get_device("opencl:0");
  std::mt19937 rng(5);
  struct Live {
    void* handle;
    std::vector<uint8_t> data;
  };
  std::vector<Live> live;
  auto add = [&](size_t bytes) {
    Live l{d->allocate(bytes), std::vector<uint8_t>(bytes)};
    for (auto& b : l.data) b = static_cast<uint8_t>(rng());
    d->copy_in(l.handle, l.data.data(), bytes);
    live.push_back(std::move(l));
  };
  for (int round = 0; round < 4; ++round) {
    for (size_t bytes : {size_t{1}, size_t{3}, size_t{4096}, size_t{100000}, size_t{3} << 20, size_t{40} << 20})
      add(bytes + static_cast<size_t>(round));
    for (size_t i = 0; i < live.size(); i += 2) d->release(live[i].handle);
    std::vector<Live> kept;
    for (size_t i = 1; i < live.size(); i += 2) kept.push_back(std::move(live[i]));
    live = std::move(kept);
  }
  add(size_t{300} << 20);  // larger than a slab: a slab of its own
  for (auto& l : live) {
    std::vector<uint8_t> back(l.data.size());
    d->copy_out(back.data(), l.handle, back.size());
    EXPECT_EQ(back, l.data) << l.data.size() << " bytes";
    d->release(l.handle);
  }
}

TEST(OpenCL, AnAllocationBeyondTheDeviceIsAnOutOfMemoryError) {
  if (!opencl_usable()) GTEST_SKIP() << "no OpenCL platform here";
  Device* d = get_device("opencl:0");
  const size_t too_much = static_cast<size_t>(d->info().memory_bytes) * 4;
  try {
    d->release(d->allocate(too_much));
    FAIL() << "allocating " << too_much << " bytes succeeded";
  } catch (const OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot allocate"), std::string::npos) << e.what();
  }
  void* small = d->allocate(1024);  // and the device still works
  d->release(small);
}

}  // namespace
}  // namespace lathe::test
