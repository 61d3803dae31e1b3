// Plugin discovery and loading: missing, invalid, wrong-ABI and unusable plugins give clear
// errors and never crash; cpu is found and usable.
#include <filesystem>
#include <fstream>

#include "test_util.h"

namespace lathe::test {
namespace {

TEST(Plugins, CpuIsDiscoveredAndUsable) {
  bool found = false;
  for (auto& s : discover_backends())
    if (s.name == "cpu") {
      found = true;
      EXPECT_TRUE(s.usable) << s.reason;
      EXPECT_FALSE(s.devices.empty());
    }
  EXPECT_TRUE(found);
  Device* d = get_device("cpu");
  EXPECT_EQ(d, get_device("cpu:0"));
  EXPECT_EQ(d->label(), "cpu:0");
}

TEST(Plugins, MissingBackendNamesTheSearchPath) {
  std::string msg = error_of([] { get_device("nosuchbackend"); });
  EXPECT_NE(msg.find("no backend named 'nosuchbackend'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("LATHE_PLUGIN_PATH"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { get_device("cpu:x"); }).size(), 0u);
}

TEST(Plugins, FileThatIsNotAPluginIsRefused) {
  auto dir = std::filesystem::temp_directory_path() / "lathe_plugin_test";
  std::filesystem::create_directories(dir);
  auto junk = dir / "lathe_junk.so";
  std::ofstream(junk) << "not an ELF file";
  std::string msg = error_of([&] { load_plugin(junk.string()); });
  EXPECT_NE(msg.find("is not a shared library (no ELF header)"), std::string::npos) << msg;
  msg = error_of([] { load_plugin(LATHE_CORE_LIBRARY); });
  EXPECT_NE(msg.find("is not a lathe plugin"), std::string::npos) << msg;
  msg = error_of([] { load_plugin("/nonexistent/lathe_x.so"); });
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(Plugins, WrongAbiVersionIsRefusedWithBothVersions) {
  std::string msg = error_of([] { load_plugin(LATHE_WRONG_ABI_PLUGIN); });
  EXPECT_NE(msg.find("ABI version " + std::to_string(kPluginAbiVersion + 1)), std::string::npos) << msg;
  EXPECT_NE(msg.find("version " + std::to_string(kPluginAbiVersion)), std::string::npos) << msg;
  EXPECT_NE(msg.find("rebuild"), std::string::npos) << msg;
}

TEST(Plugins, UnusableBackendReportsItsReason) {
  PluginStatus s = load_plugin(LATHE_UNUSABLE_PLUGIN);
  EXPECT_TRUE(s.loaded);
  EXPECT_FALSE(s.usable);
  std::string msg = error_of([] { get_device("fake_unusable"); });
  EXPECT_NE(msg.find("not usable here: the fake device is never present"), std::string::npos) << msg;
}

}  // namespace
}  // namespace lathe::test
