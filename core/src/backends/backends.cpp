// Plugin loading: finds backend libraries, checks their ABI, probes and creates their devices.
#include "lathe/backends.h"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "lathe/error.h"

#ifndef LATHE_INSTALL_PLUGIN_DIR
#define LATHE_INSTALL_PLUGIN_DIR ""
#endif

namespace lathe {
namespace fs = std::filesystem;
namespace {

struct LoadedPlugin {
  boost::dll::shared_library library;
  const PluginDescriptor* descriptor = nullptr;
  ProbeResult probe;
};

// Deliberately leaked: plugins stay loaded, and devices stay alive, until the process exits.
struct Registry {
  std::mutex mu;
  std::map<std::string, LoadedPlugin*> by_path;
  std::map<std::string, LoadedPlugin*> by_name;
  std::map<std::string, Device*> devices;
  std::map<std::string, DeviceOptions> options;
  std::string default_spec;
  bool scanned = false;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

bool looks_like_plugin(const fs::path& p) {
  std::string f = p.filename().string();
  return f.rfind("lathe_", 0) == 0 && p.extension() == ".so";
}

LoadedPlugin* load_locked(const std::string& path) {
  Registry& r = registry();
  std::string canonical = fs::weakly_canonical(path).string();
  if (auto it = r.by_path.find(canonical); it != r.by_path.end()) return it->second;
  if (!fs::exists(canonical)) throw PluginError("plugin file " + path + " does not exist");
  {  // dlopen's message for a file that is not a library at all is a bare "Bad file descriptor"
    char magic[4] = {};
    std::ifstream(canonical, std::ios::binary).read(magic, 4);
    if (std::memcmp(magic, "\x7f" "ELF", 4) != 0)
      throw PluginError("plugin file " + canonical + " is not a shared library (no ELF header); rebuild it or remove it from the plugin path");
  }
  boost::dll::shared_library lib;
  boost::system::error_code ec;
  lib.load(canonical, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec)
    throw PluginError("cannot load plugin " + canonical + ": " + ec.message() +
                      " (is it a shared library built for this machine, with its dependencies installed?)");
  if (!lib.has("lathe_plugin_abi_version") || !lib.has("lathe_plugin"))
    throw PluginError(canonical + " is not a lathe plugin: it does not export lathe_plugin_abi_version and lathe_plugin");
  uint32_t abi = lib.get_alias<uint32_t()>("lathe_plugin_abi_version")();
  if (abi != kPluginAbiVersion)
    throw PluginError("plugin " + canonical + " was built for plugin ABI version " + std::to_string(abi) +
                      ", but this lathe uses version " + std::to_string(kPluginAbiVersion) +
                      "; rebuild the plugin against this lathe's headers");
  auto* p = new LoadedPlugin;
  p->library = std::move(lib);
  p->descriptor = &p->library.get_alias<const PluginDescriptor>("lathe_plugin");
  if (p->descriptor->abi_version != kPluginAbiVersion)
    throw PluginError("plugin " + canonical + " has a descriptor of ABI version " + std::to_string(p->descriptor->abi_version) +
                      "; rebuild it against this lathe");
  try {
    p->probe = p->descriptor->probe();
  } catch (const std::exception& e) {
    p->probe = {false, std::string("probe() failed: ") + e.what(), {}};
  }
  r.by_path[canonical] = p;
  r.by_name.emplace(p->descriptor->name, p);  // the first found wins: the search path is ordered
  return p;
}

PluginStatus status_of(const LoadedPlugin& p, const std::string& path) {
  return {p.descriptor->name, path, true, p.probe.usable, p.probe.reason, p.probe.devices};
}

std::vector<PluginStatus> scan_locked() {
  std::vector<PluginStatus> out;
  for (const std::string& dir : plugin_search_path()) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    std::vector<fs::path> files;
    for (auto& entry : fs::directory_iterator(dir, ec))
      if (looks_like_plugin(entry.path())) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      try {
        out.push_back(status_of(*load_locked(f.string()), f.string()));
      } catch (const PluginError& e) {
        out.push_back({f.filename().string(), f.string(), false, false, e.what(), {}});
      }
    }
  }
  registry().scanned = true;
  return out;
}

void finish_all_devices() {
  for (auto& [key, device] : registry().devices) {
    try {
      device->synchronize();
    } catch (...) {  // exiting: nothing left to report to
    }
  }
}

}  // namespace

std::vector<std::string> plugin_search_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("LATHE_PLUGIN_PATH")) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':'))
      if (!item.empty()) dirs.push_back(item);
  }
  boost::system::error_code ec;
  fs::path exe = boost::dll::program_location(ec).parent_path().string();
  if (!ec) {
    dirs.push_back(exe.string());
    dirs.push_back((exe / "plugins").string());
    dirs.push_back((exe.parent_path() / "lib" / "lathe" / "plugins").string());
  }
  fs::path core = boost::dll::this_line_location(ec).parent_path().string();
  if (!ec) dirs.push_back((core / "lathe" / "plugins").string());
  if (std::string(LATHE_INSTALL_PLUGIN_DIR).size()) dirs.push_back(LATHE_INSTALL_PLUGIN_DIR);
  std::vector<std::string> unique;
  for (auto& d : dirs) {
    std::string c = fs::weakly_canonical(d).string();
    if (std::find(unique.begin(), unique.end(), c) == unique.end()) unique.push_back(c);
  }
  return unique;
}

std::vector<PluginStatus> discover_backends() {
  std::lock_guard<std::mutex> lock(registry().mu);
  return scan_locked();
}

PluginStatus load_plugin(const std::string& path) {
  std::lock_guard<std::mutex> lock(registry().mu);
  return status_of(*load_locked(path), path);
}

std::vector<std::string> usable_backends() {
  std::vector<std::string> names;
  for (auto& s : discover_backends())
    if (s.usable && std::find(names.begin(), names.end(), s.name) == names.end()) names.push_back(s.name);
  return names;
}

Device* get_device(const std::string& spec, const DeviceOptions& options) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::string name = spec;
  int index = 0;
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    name = spec.substr(0, colon);
    try {
      index = std::stoi(spec.substr(colon + 1));
    } catch (...) {
      throw Error("bad device '" + spec + "': write NAME or NAME:INDEX, e.g. cpu:0");
    }
  }
  std::string key = name + ":" + std::to_string(index);
  if (auto it = r.devices.find(key); it != r.devices.end()) {
    if (!options.empty() && r.options[key] != options)
      throw PluginError("device " + key + " already exists with other options; set them before its first use");
    return it->second;
  }
  if (!r.by_name.count(name)) scan_locked();
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) {
    // A plugin file of that name that failed to load says why, rather than "no backend".
    for (auto& d : plugin_search_path())
      if (fs::path f = fs::path(d) / ("lathe_" + name + ".so"); fs::exists(f)) load_locked(f.string());
    std::string known, path;
    for (auto& [n, p] : r.by_name) known += (known.empty() ? "" : ", ") + n;
    for (auto& d : plugin_search_path()) path += "\n  " + d;
    throw PluginError("no backend named '" + name + "' (found: " + (known.empty() ? "none" : known) +
                      "). Plugins are searched in:" + path + "\nSet LATHE_PLUGIN_PATH to the folder holding lathe_" + name +
                      ".so, or run `lathe backends`.");
  }
  LoadedPlugin* p = it->second;
  if (!p->probe.usable) {
    std::string usable;
    for (auto& [n, q] : r.by_name)
      if (q->probe.usable) usable += (usable.empty() ? "" : ", ") + n;
    throw PluginError("backend '" + name + "' is not usable here: " + p->probe.reason + ". Usable backends: " +
                      (usable.empty() ? "none" : usable) + " (`lathe backends` shows why each is or is not)");
  }
  std::unique_ptr<Device> device;
  try {
    device = p->descriptor->create(index, options);
  } catch (const std::exception& e) {
    throw PluginError("backend '" + name + "': create(device " + std::to_string(index) + ") failed: " + e.what());
  }
  device->set_identity(name, index);
  r.options[key] = options;
  Device* raw = device.release();
  r.devices[key] = raw;
  // Work still queued at exit would run while drivers tear themselves down: finish it first.
  // Registered after the driver loaded, so it runs before the driver's own exit handlers.
  static const bool finish_at_exit = (std::atexit(finish_all_devices), true);
  (void)finish_at_exit;
  return raw;
}

void set_default_device(const std::string& spec) {
  get_device(spec);
  std::lock_guard<std::mutex> lock(registry().mu);
  registry().default_spec = spec;
}

Device* default_device() {
  std::string spec;
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    spec = registry().default_spec;
  }
  if (spec.empty()) {
    const char* env = std::getenv("LATHE_BACKEND");
    spec = env && *env ? env : "cpu";
  }
  return get_device(spec);
}

}  // namespace lathe
