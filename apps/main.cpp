// `lathe`: train, evaluate, benchmark and inspect backends.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <new>

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
  lathe::app::add_tokenize_command(app);
  lathe::app::add_generate_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lathe::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    spdlog::error("out of host memory; lower train.batch_size or train.seq_len (and raise train.grad_accum), or use a smaller model");
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    spdlog::error("file system: {} (path: {}); check that the folder exists and is writable", e.code().message(), e.path1().string());
    return 1;
  } catch (const std::exception& e) {  // a library's exception that no check anticipated: still one line, no abort
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
