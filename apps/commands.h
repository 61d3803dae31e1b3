// The `lathe` command's subcommands; each registers its options on a CLI11 app.
#pragma once
#include <CLI/CLI.hpp>

namespace lathe::app {

void add_backends_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);

}  // namespace lathe::app
