// `lathe train [CONFIG.toml] [--set section.key=value]... [--print-config] [--dry-run]`
#include <fmt/format.h>

#include "commands.h"
#include "lathe/error.h"
#include "train/config.h"
#include "train/trainer.h"

namespace lathe::app {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a Llama model as a TOML config says (defaults: a small model on a synthetic task)");
  static std::string config_path;
  static std::vector<std::string> overrides;
  static bool print_config = false, dry_run = false;
  cmd->add_option("config", config_path, "TOML config file (optional)");
  cmd->add_option("--set", overrides, "override a key, e.g. --set train.steps=100 (repeatable)");
  cmd->add_flag("--print-config", print_config, "print the full config with defaults filled in, then exit");
  cmd->add_flag("--dry-run", dry_run,
                "plan one training step without allocating, compiling or running anything, print its memory "
                "(parameters, state, activations, peak), then exit; the run folder is not touched");
  cmd->callback([] {
    TrainConfig c = load_train_config(config_path, overrides);
    if (print_config) {
      fmt::print("{}", config_to_toml(c));
      return;
    }
    c.dry_run = dry_run;
    train(c);
  });
}

}  // namespace lathe::app
