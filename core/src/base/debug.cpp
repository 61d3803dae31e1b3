// Debug logging (LATHE_DEBUG) and the runtime's counters.
#include "base/debug.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "lathe/runtime.h"

namespace lathe {

RuntimeStats& runtime_stats() {
  static RuntimeStats stats;
  return stats;
}

int debug_level() {
  static int level = [] {
    const char* v = std::getenv("LATHE_DEBUG");
    return v ? std::atoi(v) : 0;
  }();
  return level;
}

// LATHE_DEBUG output goes to stderr, leaving stdout to the program's own results.
spdlog::logger& debug_log() {
  static std::shared_ptr<spdlog::logger> log = [] {
    auto l = spdlog::get("lathe.debug");
    return l ? l : spdlog::stderr_color_mt("lathe.debug");
  }();
  return *log;
}

}  // namespace lathe
