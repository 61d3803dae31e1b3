// Test plugins: one built for another ABI version, one whose probe says it cannot run here.
#include <boost/dll/alias.hpp>

#include "lathe/device.h"
#include "lathe/error.h"

namespace fake {

uint32_t abi_version() { return LATHE_FAKE_ABI; }
lathe::ProbeResult probe() { return {false, "the fake device is never present (test plugin)", {}}; }
std::unique_ptr<lathe::Device> create(int, const lathe::DeviceOptions&) { throw lathe::Error("unreachable"); }
const lathe::PluginDescriptor descriptor{LATHE_FAKE_ABI, LATHE_FAKE_NAME, &probe, &create};

}  // namespace fake

BOOST_DLL_ALIAS(fake::abi_version, lathe_plugin_abi_version)
BOOST_DLL_ALIAS(fake::descriptor, lathe_plugin)
