// `lathe backends`: every plugin found, whether it is usable here, its devices, or why not.
#include <fmt/format.h>

#include "commands.h"
#include "lathe/backends.h"

namespace lathe::app {

void add_backends_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("backends", "List backend plugins, their devices, and why any is unusable");
  cmd->callback([] {
    auto found = discover_backends();
    fmt::print("plugin search path:\n");
    for (auto& d : plugin_search_path()) fmt::print("  {}\n", d);
    if (found.empty()) fmt::print("\nno plugins found; set LATHE_PLUGIN_PATH to the folder holding lathe_*.so\n");
    fmt::print("\n");
    for (auto& s : found) {
      fmt::print("{:<10} {:<9} {}\n", s.name, !s.loaded ? "invalid" : s.usable ? "usable" : "unusable", s.path);
      for (auto& d : s.devices) fmt::print("           device  {}\n", d);
      if (!s.usable) fmt::print("           reason  {}\n", s.reason);
    }
  });
}

}  // namespace lathe::app
