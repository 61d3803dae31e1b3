#include "config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <functional>
#include <sstream>

#include "lathe/error.h"

namespace lathe::app {
namespace {

enum class Kind { Int, Float, String, Bool, Table };

struct Key {
  const char* path;
  Kind kind;
  const char* doc;
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices = {};
};

// Every key, in printing order. Bindings to TrainConfig fields are in bind() below.
const std::vector<Key>& schema() {
  static const std::vector<Key> keys = {
      {"backend.name", Kind::String, "backend plugin to train on (see `lathe backends`)"},
      {"backend.device", Kind::Int, "device index within the backend", 0, 1024},
      {"backend.options", Kind::Table, "backend-specific options, e.g. { memory_limit_mib = 4096 } for cpu"},
      {"model.preset", Kind::String, "a Llama preset (llama3.1-8b, llama3.2-1b, tiny, small, ...); empty: the sizes below"},
      {"model.hf_checkpoint", Kind::String, "initialise from this Hugging Face folder (config.json + safetensors)"},
      {"model.vocab_size", Kind::Int, "vocabulary; 0 takes the data's", 0, 1e7},
      {"model.hidden_size", Kind::Int, "model width", 1, 1e6},
      {"model.intermediate_size", Kind::Int, "SwiGLU hidden width", 1, 1e7},
      {"model.num_layers", Kind::Int, "decoder layers (also overrides a preset's)", 1, 1e4},
      {"model.num_heads", Kind::Int, "attention heads", 1, 1e4},
      {"model.num_kv_heads", Kind::Int, "key/value heads (grouped-query attention); must divide num_heads", 1, 1e4},
      {"model.rope_theta", Kind::Float, "rotary embedding base", 1, 1e9},
      {"model.rms_norm_eps", Kind::Float, "RMSNorm epsilon", 0, 1},
      {"model.init_std", Kind::Float, "standard deviation of the initial weights", 0, 10},
      {"model.tie_embeddings", Kind::Bool, "share the embedding with the output projection"},
      {"data.source", Kind::String, "synthetic (built in, needs no files) or file", 0, 0, {"synthetic", "file"}},
      {"data.path", Kind::String, "token file: .bin (llm.c/nanoGPT uint16/uint32), .npy, or text read as bytes"},
      {"data.val_fraction", Kind::Float, "last fraction of the file used for validation", 0, 0.99},
      {"data.synthetic_vocab", Kind::Int, "vocabulary of the synthetic task", 4, 1e7},
      {"train.steps", Kind::Int, "optimizer steps", 1, 1e12},
      {"train.batch_size", Kind::Int, "sequences per micro-batch", 1, 1e7},
      {"train.seq_len", Kind::Int, "tokens per sequence", 1, 1e7},
      {"train.grad_accum", Kind::Int, "micro-batches per optimizer step", 1, 1e6},
      {"train.precision", Kind::String, "fp32, or bf16 (bfloat16 compute, float32 master weights)", 0, 0, {"fp32", "bf16"}},
      {"train.seed", Kind::Int, "seed of the initial weights and the data sampler", 0, 2147483647},
      {"optimizer.name", Kind::String, "adamw or sgd", 0, 0, {"adamw", "sgd"}},
      {"optimizer.lr", Kind::Float, "peak learning rate", 0, 10},
      {"optimizer.beta1", Kind::Float, "AdamW beta1", 0, 0.999999},
      {"optimizer.beta2", Kind::Float, "AdamW beta2", 0, 0.999999},
      {"optimizer.eps", Kind::Float, "AdamW epsilon", 0, 1},
      {"optimizer.weight_decay", Kind::Float, "decoupled weight decay, applied to matrices only", 0, 10},
      {"optimizer.momentum", Kind::Float, "SGD momentum", 0, 0.999999},
      {"optimizer.grad_clip", Kind::Float, "clip the global gradient norm to this (0: off)", 0, 1e9},
      {"schedule.warmup_steps", Kind::Int, "linear warm-up steps", 0, 1e12},
      {"schedule.decay", Kind::String, "cosine, linear or constant after warm-up", 0, 0, {"cosine", "linear", "constant"}},
      {"schedule.min_lr", Kind::Float, "learning rate at the end of the decay", 0, 10},
      {"eval.every", Kind::Int, "evaluate every N steps (0: only at the end)", 0, 1e12},
      {"eval.batches", Kind::Int, "validation batches per evaluation", 1, 1e6},
      {"eval.target_loss", Kind::Float, "stop when the validation loss reaches this (0: never), like MLPerf", 0, 1e6},
      {"checkpoint.dir", Kind::String, "run folder: checkpoints, logs, metrics, plot and export"},
      {"checkpoint.every", Kind::Int, "write a checkpoint every N steps (0: only at the end)", 0, 1e12},
      {"checkpoint.keep", Kind::Int, "how many recent checkpoints to keep", 1, 1e6},
      {"checkpoint.resume", Kind::String, "auto: continue from the newest complete checkpoint; never: start over", 0, 0, {"auto", "never"}},
      {"checkpoint.export_hf", Kind::Bool, "export the final model in Hugging Face layout to <dir>/hf"},
      {"log.every", Kind::Int, "log a line every N steps", 1, 1e12},
      {"log.mllog", Kind::Bool, "print MLPerf-style :::MLLOG lines"},
      {"log.plot", Kind::Bool, "draw the loss curves to <dir>/loss.svg with gnuplot when it is installed"},
  };
  return keys;
}

// Where each key lives in TrainConfig.
using Binding = std::function<void(TrainConfig&, const toml::node&)>;
template <class T>
Binding field(T TrainConfig::*member) {
  return [member](TrainConfig& c, const toml::node& n) {
    if constexpr (std::is_same_v<T, std::string>) c.*member = *n.value<std::string>();
    else if constexpr (std::is_same_v<T, bool>) c.*member = *n.value<bool>();
    else if constexpr (std::is_same_v<T, int>) c.*member = static_cast<int>(*n.value<int64_t>());
    else c.*member = *n.value<double>();
  };
}

const std::map<std::string, Binding>& bindings() {
  static const std::map<std::string, Binding> b = {
      {"backend.name", field(&TrainConfig::backend)}, {"backend.device", field(&TrainConfig::device)},
      {"backend.options", [](TrainConfig& c, const toml::node& n) {
         for (auto&& [k, v] : *n.as_table()) {
           std::ostringstream s;
           if (auto str = v.value<std::string>()) s << *str;
           else v.visit([&](auto&& x) { s << x; });
           c.backend_options[std::string(k.str())] = s.str();
         }
       }},
      {"model.preset", field(&TrainConfig::preset)}, {"model.hf_checkpoint", field(&TrainConfig::hf_checkpoint)},
      {"model.vocab_size", field(&TrainConfig::vocab_size)}, {"model.hidden_size", field(&TrainConfig::hidden_size)},
      {"model.intermediate_size", field(&TrainConfig::intermediate_size)}, {"model.num_layers", field(&TrainConfig::num_layers)},
      {"model.num_heads", field(&TrainConfig::num_heads)}, {"model.num_kv_heads", field(&TrainConfig::num_kv_heads)},
      {"model.rope_theta", field(&TrainConfig::rope_theta)}, {"model.rms_norm_eps", field(&TrainConfig::rms_norm_eps)},
      {"model.init_std", field(&TrainConfig::init_std)}, {"model.tie_embeddings", field(&TrainConfig::tie_embeddings)},
      {"data.source", field(&TrainConfig::data_source)}, {"data.path", field(&TrainConfig::data_path)},
      {"data.val_fraction", field(&TrainConfig::val_fraction)}, {"data.synthetic_vocab", field(&TrainConfig::synthetic_vocab)},
      {"train.steps", field(&TrainConfig::steps)}, {"train.batch_size", field(&TrainConfig::batch_size)},
      {"train.seq_len", field(&TrainConfig::seq_len)}, {"train.grad_accum", field(&TrainConfig::grad_accum)},
      {"train.precision", field(&TrainConfig::precision)}, {"train.seed", field(&TrainConfig::seed)},
      {"optimizer.name", field(&TrainConfig::optimizer)}, {"optimizer.lr", field(&TrainConfig::lr)},
      {"optimizer.beta1", field(&TrainConfig::beta1)}, {"optimizer.beta2", field(&TrainConfig::beta2)},
      {"optimizer.eps", field(&TrainConfig::eps)}, {"optimizer.weight_decay", field(&TrainConfig::weight_decay)},
      {"optimizer.momentum", field(&TrainConfig::momentum)}, {"optimizer.grad_clip", field(&TrainConfig::grad_clip)},
      {"schedule.warmup_steps", field(&TrainConfig::warmup_steps)}, {"schedule.decay", field(&TrainConfig::decay)},
      {"schedule.min_lr", field(&TrainConfig::min_lr)}, {"eval.every", field(&TrainConfig::eval_every)},
      {"eval.batches", field(&TrainConfig::eval_batches)}, {"eval.target_loss", field(&TrainConfig::target_loss)},
      {"checkpoint.dir", field(&TrainConfig::out_dir)}, {"checkpoint.every", field(&TrainConfig::checkpoint_every)},
      {"checkpoint.keep", field(&TrainConfig::keep)}, {"checkpoint.resume", field(&TrainConfig::resume)},
      {"checkpoint.export_hf", field(&TrainConfig::export_hf)}, {"log.every", field(&TrainConfig::log_every)},
      {"log.mllog", field(&TrainConfig::mllog)}, {"log.plot", field(&TrainConfig::plot)},
  };
  return b;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& path) {
  std::string best;
  size_t best_d = 1000;
  for (auto& k : schema()) {
    size_t d = edit_distance(path, k.path);
    std::string leaf = std::string(k.path).substr(std::string(k.path).find('.') + 1);
    d = std::min(d, edit_distance(path.substr(path.find('.') + 1), leaf) + 1);
    if (d < best_d) best_d = d, best = k.path;
  }
  return best_d <= std::max<size_t>(3, path.size() / 3) ? " (did you mean " + best + "?)" : "";
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Int: return "an integer";
    case Kind::Float: return "a number";
    case Kind::String: return "a string";
    case Kind::Bool: return "true or false";
    case Kind::Table: return "an inline table { key = value, ... }";
  }
  return "?";
}

void check_value(const Key& key, const toml::node& n, const std::string& where) {
  bool ok = key.kind == Kind::Int      ? n.is_integer()
            : key.kind == Kind::Float  ? n.is_number()
            : key.kind == Kind::String ? n.is_string()
            : key.kind == Kind::Table  ? n.is_table()
                                       : n.is_boolean();
  std::ostringstream shown;
  if (!n.is_table()) n.visit([&](auto&& v) { shown << v; });
  if (!ok) throw Error(where + ": " + key.path + " must be " + kind_name(key.kind) + ", got " + shown.str());
  if (key.kind == Kind::Int || key.kind == Kind::Float) {
    double v = *n.value<double>();
    if (v < key.min || v > key.max)
      throw Error(where + ": " + key.path + " = " + shown.str() + " is out of range [" + std::to_string(key.min) + ", " + std::to_string(key.max) + "]");
  }
  if (key.kind == Kind::String && !key.choices.empty()) {
    std::string v = *n.value<std::string>(), list;
    for (auto& c : key.choices) list += (list.empty() ? "" : ", ") + c;
    if (std::find(key.choices.begin(), key.choices.end(), v) == key.choices.end())
      throw Error(where + ": " + key.path + " = \"" + v + "\" is not one of " + list);
  }
}

void apply_override(toml::table& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set " + assignment + ": write section.key=value, e.g. --set train.steps=100");
  std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  auto dot = path.find('.');
  if (dot == std::string::npos) throw Error("--set " + assignment + ": the key needs its section, e.g. train.steps" + suggestion("x." + path));
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value}};  // a bare word: a string
  }
  std::string section = path.substr(0, dot), leaf = path.substr(dot + 1);
  if (!root.contains(section)) root.insert(section, toml::table{});
  auto* t = root[section].as_table();
  if (!t) throw Error("--set " + assignment + ": [" + section + "] is not a section");
  t->insert_or_assign(leaf, *parsed["v"].node());
}

}  // namespace

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  toml::table root;
  std::string where = path.empty() ? "the default config" : path;
  if (!path.empty()) {
    try {
      root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      std::ostringstream msg;
      msg << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
      throw Error("cannot read config " + msg.str());
    }
  }
  for (auto& o : overrides) apply_override(root, o);
  if (!overrides.empty()) where += " with --set overrides";
  TrainConfig c;
  for (auto&& [section, node] : root) {
    const auto* table = node.as_table();
    if (!table) throw Error(where + ": top-level key '" + std::string(section.str()) + "' must be a [section]" + suggestion(std::string(section.str()) + ".x"));
    for (auto&& [leaf, value] : *table) {
      std::string key = std::string(section.str()) + "." + std::string(leaf.str());
      auto it = std::find_if(schema().begin(), schema().end(), [&](const Key& k) { return key == k.path; });
      if (it == schema().end()) throw Error(where + ": unknown key " + key + suggestion(key));
      check_value(*it, value, where);
      bindings().at(key)(c, value);
      c.set_keys.insert(key);
    }
  }
  if (c.num_heads % c.num_kv_heads != 0) throw Error(where + ": model.num_kv_heads (" + std::to_string(c.num_kv_heads) + ") must divide model.num_heads (" + std::to_string(c.num_heads) + ")");
  if (c.hidden_size % c.num_heads != 0) throw Error(where + ": model.hidden_size must be a multiple of model.num_heads");
  if (c.data_source == "file" && c.data_path.empty()) throw Error(where + ": data.source = \"file\" needs data.path");
  if (c.min_lr > c.lr) throw Error(where + ": schedule.min_lr (" + std::to_string(c.min_lr) + ") exceeds optimizer.lr (" + std::to_string(c.lr) + ")");
  return c;
}

std::string config_to_toml(const TrainConfig& c) {
  // Read each value back through the bindings' inverse: format from the struct directly.
  std::map<std::string, std::string> values = {
      {"backend.name", "\"" + c.backend + "\""}, {"backend.device", std::to_string(c.device)},
      {"backend.options", [&] {
         std::string t = "{ ";
         for (auto& [k, v] : c.backend_options) t += k + " = \"" + v + "\", ";
         return c.backend_options.empty() ? std::string("{}") : t.substr(0, t.size() - 2) + " }";
       }()},
      {"model.preset", "\"" + c.preset + "\""}, {"model.hf_checkpoint", "\"" + c.hf_checkpoint + "\""},
      {"model.vocab_size", std::to_string(c.vocab_size)}, {"model.hidden_size", std::to_string(c.hidden_size)},
      {"model.intermediate_size", std::to_string(c.intermediate_size)}, {"model.num_layers", std::to_string(c.num_layers)},
      {"model.num_heads", std::to_string(c.num_heads)}, {"model.num_kv_heads", std::to_string(c.num_kv_heads)},
      {"data.source", "\"" + c.data_source + "\""}, {"data.path", "\"" + c.data_path + "\""},
      {"data.synthetic_vocab", std::to_string(c.synthetic_vocab)}, {"train.steps", std::to_string(c.steps)},
      {"train.batch_size", std::to_string(c.batch_size)}, {"train.seq_len", std::to_string(c.seq_len)},
      {"train.grad_accum", std::to_string(c.grad_accum)}, {"train.precision", "\"" + c.precision + "\""},
      {"train.seed", std::to_string(c.seed)}, {"optimizer.name", "\"" + c.optimizer + "\""},
      {"schedule.warmup_steps", std::to_string(c.warmup_steps)}, {"schedule.decay", "\"" + c.decay + "\""},
      {"eval.every", std::to_string(c.eval_every)}, {"eval.batches", std::to_string(c.eval_batches)},
      {"checkpoint.dir", "\"" + c.out_dir + "\""}, {"checkpoint.every", std::to_string(c.checkpoint_every)},
      {"checkpoint.keep", std::to_string(c.keep)}, {"checkpoint.resume", "\"" + c.resume + "\""},
      {"checkpoint.export_hf", c.export_hf ? "true" : "false"}, {"log.every", std::to_string(c.log_every)},
      {"log.mllog", c.mllog ? "true" : "false"}, {"log.plot", c.plot ? "true" : "false"},
      {"model.tie_embeddings", c.tie_embeddings ? "true" : "false"},
  };
  auto num = [](double v) {
    std::ostringstream s;
    s << v;
    std::string r = s.str();
    if (r.find_first_of(".en") == std::string::npos) r += ".0";
    return r;
  };
  values["model.rope_theta"] = num(c.rope_theta);
  values["model.rms_norm_eps"] = num(c.rms_norm_eps);
  values["model.init_std"] = num(c.init_std);
  values["data.val_fraction"] = num(c.val_fraction);
  values["optimizer.lr"] = num(c.lr);
  values["optimizer.beta1"] = num(c.beta1);
  values["optimizer.beta2"] = num(c.beta2);
  values["optimizer.eps"] = num(c.eps);
  values["optimizer.weight_decay"] = num(c.weight_decay);
  values["optimizer.momentum"] = num(c.momentum);
  values["optimizer.grad_clip"] = num(c.grad_clip);
  values["schedule.min_lr"] = num(c.min_lr);
  values["eval.target_loss"] = num(c.target_loss);
  std::string out, section;
  for (auto& k : schema()) {
    std::string path = k.path, sec = path.substr(0, path.find('.'));
    if (sec != section) {
      out += (out.empty() ? "" : "\n") + ("[" + sec + "]\n");
      section = sec;
    }
    std::string line = path.substr(path.find('.') + 1) + " = " + values.at(path);
    line.append(line.size() < 40 ? 40 - line.size() : 1, ' ');
    out += line + "# " + k.doc + "\n";
  }
  return out;
}

}  // namespace lathe::app
