// The trainer's configuration: a TOML file, defaults for every key, command-line overrides
// (--set section.key=value), and errors that name the key and suggest the one meant.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lathe::app {

struct TrainConfig {
  // [backend]
  std::string backend = "cpu";
  int device = 0;
  std::map<std::string, std::string> backend_options;  // passed to the backend, e.g. memory_limit_mib
  // [model]
  std::string preset;         // a llama preset name, or empty for the explicit size below
  std::string hf_checkpoint;  // initialise from a Hugging Face folder instead
  int vocab_size = 0;         // 0: the data's vocabulary
  int hidden_size = 64, intermediate_size = 192, num_layers = 2, num_heads = 4, num_kv_heads = 2;
  double rope_theta = 10000, rms_norm_eps = 1e-5, init_std = 0.02;
  std::string init = "normal";  // normal (N(0, init_std)) or pytorch (torch.nn module defaults)
  bool tie_embeddings = false;
  // [data]
  std::string data_format = "auto";
  std::string data_source = "synthetic", data_path, val_path;
  double val_fraction = 0.1;
  int synthetic_vocab = 64;
  // [train]
  int steps = 300, batch_size = 16, seq_len = 64, grad_accum = 1;
  std::string precision = "fp32";
  bool recompute = false;
  std::string grad_dtype = "fp32";
  bool dry_run = false;  // lathe train --dry-run: plan one step, print its memory, run nothing
  int seed = 1337;
  // [optimizer]
  std::string optimizer = "adamw";
  double lr = 3e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1, momentum = 0.9, grad_clip = 1.0;
  std::string state_dtype = "fp32";
  // [schedule]
  int warmup_steps = 20;
  std::string decay = "cosine";
  double min_lr = 3e-4;
  // [eval]
  int eval_every = 50, eval_batches = 4;
  double target_loss = 0;
  // [checkpoint]
  std::string out_dir = "runs/default";
  int checkpoint_every = 100, keep = 2;
  std::string resume = "auto";
  bool export_hf = true;
  std::string export_dtype = "fp32";
  // [distributed] (under mpirun)
  bool shard_optimizer = false;  // ZeRO stage 1: each rank keeps and updates its own parameters' optimizer state
  int bucket_mib = 25;           // gradients cross ranks in buckets of about this size
  // [log]
  int log_every = 10;
  bool mllog = true, plot = true;

  std::set<std::string> set_keys;  // keys given in the file or on the command line
};

// Reads `path` (empty: defaults only), applies overrides "section.key=value", validates.
TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides);
// The same from TOML text; `where` names it in errors.
TrainConfig parse_train_config(const std::string& text, const std::string& where);
// Every key ("section.key") with its value as TOML writes it, in printing order.
std::vector<std::pair<std::string, std::string>> config_values(const TrainConfig& config);
// The whole configuration as TOML with every default filled in and each key documented.
std::string config_to_toml(const TrainConfig& config);

}  // namespace lathe::app
