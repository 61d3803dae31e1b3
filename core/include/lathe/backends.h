// Finding, loading and opening backend plugins. Plugins are searched next to the executable,
// under the install prefix and in LATHE_PLUGIN_PATH; each is loaded once and never unloaded.
#pragma once
#include <string>
#include <vector>

#include "lathe/device.h"

namespace lathe {

struct PluginStatus {
  std::string name;   // backend name, or the file name when the file is not a usable plugin
  std::string path;
  bool loaded = false;
  bool usable = false;
  std::string reason;  // why not loaded or not usable
  std::vector<std::string> devices;
};

// Every plugin file found on the search path, loaded and probed.
std::vector<PluginStatus> discover_backends();
std::vector<std::string> plugin_search_path();

// Loads one plugin file; throws PluginError saying what is wrong with it.
PluginStatus load_plugin(const std::string& path);

// "cpu" or "cpu:1". Created on first use, with `options` (backend-specific, e.g.
// memory_limit_mib for cpu), and kept for the life of the process; asking again for a created
// device with different options is an error.
Device* get_device(const std::string& spec, const DeviceOptions& options = {});
// LATHE_BACKEND, else "cpu", unless set_default_device was called.
Device* default_device();
void set_default_device(const std::string& spec);
// Usable backend names, for conformance tests.
std::vector<std::string> usable_backends();

}  // namespace lathe
