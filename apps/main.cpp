// `lathe`: train, evaluate, benchmark and inspect backends.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "lathe/error.h"

int main(int argc, char** argv) {
  CLI::App app{"lathe: a small deep-learning training stack with pluggable backends"};
  app.require_subcommand(1);
  lathe::app::add_backends_command(app);
  lathe::app::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lathe::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
