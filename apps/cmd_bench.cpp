#include "commands.h"
namespace lathe::app {
void add_bench_command(CLI::App& app) { app.add_subcommand("bench", "Benchmarks"); }
}  // namespace lathe::app
