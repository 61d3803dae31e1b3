// Debug logging and the runtime's counters, which every part of core reports to.
#pragma once

namespace spdlog {
class logger;
}

namespace lathe {

// LATHE_DEBUG output (stderr); the level is lathe::debug_level() (lathe/runtime.h).
spdlog::logger& debug_log();

}  // namespace lathe
