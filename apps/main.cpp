// `lathe`: train, evaluate, benchmark and inspect backends.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "commands.h"
#include "lathe/error.h"

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("lathe"));  // results on stdout, messages on stderr
  CLI::App app{"lathe: a small deep-learning training stack with pluggable backends"};
  app.require_subcommand(1);
  lathe::app::add_backends_command(app);
  lathe::app::add_bench_command(app);
  lathe::app::add_eval_command(app);
  lathe::app::add_train_command(app);
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
