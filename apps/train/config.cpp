#include "config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "lathe/error.h"

namespace lathe::app {
namespace {

enum class Kind { Int, Float, String, Bool, Table };

std::string toml_number(double v) {
  std::ostringstream s;
  s << v;
  std::string r = s.str();
  return r.find_first_of(".en") == std::string::npos ? r + ".0" : r;
}

// One key: its path, type, documentation, limits, and how to set it in and print it from
// TrainConfig. Parsing, validation and --print-config all read this one table.
struct Key {
  const char* path;
  Kind kind;
  const char* doc;
  double min = -1e300, max = 1e300;
  std::vector<std::string> choices = {};
  std::function<void(TrainConfig&, const toml::node&)> set = {};
  std::function<std::string(const TrainConfig&)> show = {};
};

template <class T>
Key key(const char* path, T TrainConfig::*member, const char* doc, double min = -1e300, double max = 1e300,
        std::vector<std::string> choices = {}) {
  Kind kind = std::is_same_v<T, std::string> ? Kind::String : std::is_same_v<T, bool> ? Kind::Bool
              : std::is_same_v<T, int>       ? Kind::Int
                                             : Kind::Float;
  if constexpr (std::is_same_v<T, int>) max = std::min(max, 2147483647.0);  // the field's range, not only the key's
  Key k{path, kind, doc, min, max, std::move(choices)};
  k.set = [member](TrainConfig& c, const toml::node& n) {
    if constexpr (std::is_same_v<T, std::string>) c.*member = *n.value<std::string>();
    else if constexpr (std::is_same_v<T, bool>) c.*member = *n.value<bool>();
    else if constexpr (std::is_same_v<T, int>) c.*member = static_cast<int>(*n.value<int64_t>());
    else c.*member = *n.value<double>();
  };
  k.show = [member](const TrainConfig& c) -> std::string {
    if constexpr (std::is_same_v<T, std::string>) return "\"" + c.*member + "\"";
    else if constexpr (std::is_same_v<T, bool>) return c.*member ? "true" : "false";
    else if constexpr (std::is_same_v<T, int>) return std::to_string(c.*member);
    else return toml_number(c.*member);
  };
  return k;
}

Key options_key() {
  Key k{"backend.options", Kind::Table, "backend-specific options, e.g. { memory_limit_mib = 4096 } for cpu"};
  k.set = [](TrainConfig& c, const toml::node& n) {
    for (auto&& [name, v] : *n.as_table()) {
      std::ostringstream s;
      if (auto str = v.value<std::string>()) s << *str;
      else v.visit([&](auto&& x) { s << x; });
      c.backend_options[std::string(name.str())] = s.str();
    }
  };
  k.show = [](const TrainConfig& c) {
    std::string t;
    for (auto& [name, v] : c.backend_options) t += (t.empty() ? "{ " : ", ") + name + " = \"" + v + "\"";
    return t.empty() ? std::string("{}") : t + " }";
  };
  return k;
}

// Every key, in printing order.
const std::vector<Key>& schema() {
  using C = TrainConfig;
  static const std::vector<Key> keys = {
      key("backend.name", &C::backend, "backend plugin to train on (see `lathe backends`)"),
      key("backend.device", &C::device, "device index within the backend (under mpirun: unset, each rank takes the one of its index on its host)", 0, 1024),
      options_key(),
      key("model.preset", &C::preset, "a Llama preset (llama3.1-8b, llama3.2-1b, tiny, small, ...); empty: the sizes below"),
      key("model.hf_checkpoint", &C::hf_checkpoint, "initialise from this Hugging Face folder (config.json + safetensors)"),
      key("model.vocab_size", &C::vocab_size, "vocabulary; 0 takes the data's", 0, 1e7),
      key("model.hidden_size", &C::hidden_size, "model width", 1, 1e6),
      key("model.intermediate_size", &C::intermediate_size, "SwiGLU hidden width", 1, 1e7),
      key("model.num_layers", &C::num_layers, "decoder layers (also overrides a preset's)", 1, 1e4),
      key("model.num_heads", &C::num_heads, "attention heads", 1, 1e4),
      key("model.num_kv_heads", &C::num_kv_heads, "key/value heads (grouped-query attention); must divide num_heads", 1, 1e4),
      key("model.rope_theta", &C::rope_theta, "rotary embedding base", 1, 1e9),
      key("model.rms_norm_eps", &C::rms_norm_eps, "RMSNorm epsilon", 0, 1),
      key("model.init_std", &C::init_std, "standard deviation of the initial weights", 0, 10),
      key("model.init", &C::init, "normal: N(0, init_std) for every matrix; pytorch: torch.nn defaults (Linear U(+-1/sqrt(in)), Embedding N(0, 1))", 0, 0,
          {"normal", "pytorch"}),
      key("model.tie_embeddings", &C::tie_embeddings, "share the embedding with the output projection"),
      key("data.source", &C::data_source, "synthetic (built in, needs no files) or file", 0, 0, {"synthetic", "file"}),
      key("data.path", &C::data_path, "token file: .bin (llm.c/nanoGPT uint16/uint32), .npy, or text read as bytes; PREFIX of a Megatron dataset"),
      key("data.format", &C::data_format, "auto (by data.path's extension; .idx is Megatron's) or megatron (PREFIX.bin + PREFIX.idx, in Megatron's GPT-dataset sample order)", 0, 0, {"auto", "megatron"}),
      key("data.val_fraction", &C::val_fraction, "last fraction of the file used for validation (unused with data.val_path)", 0, 0.99),
      key("data.val_path", &C::val_path, "a validation dataset of its own, in data.path's format (empty: validate on data.path's last val_fraction)"),
      key("data.synthetic_vocab", &C::synthetic_vocab, "vocabulary of the synthetic task", 4, 1e7),
      key("train.steps", &C::steps, "optimizer steps", 1, 1e12),
      key("train.batch_size", &C::batch_size, "sequences per micro-batch", 1, 1e7),
      key("train.seq_len", &C::seq_len, "tokens per sequence", 1, 1e7),
      key("train.grad_accum", &C::grad_accum, "micro-batches per optimizer step, across all ranks under mpirun (a multiple of the rank count)", 1, 1e6),
      key("train.precision", &C::precision, "fp32, or bf16 (bfloat16 compute, float32 master weights)", 0, 0, {"fp32", "bf16"}),
      key("train.recompute", &C::recompute, "compute each decoder layer's activations again in the backward pass (less memory, more compute)"),
      key("train.grad_dtype", &C::grad_dtype, "gradients stored as fp32, or bf16 (half their memory; float32 master weights stay)", 0, 0, {"fp32", "bf16"}),
      key("train.seed", &C::seed, "seed of the initial weights and the data sampler", 0, 2147483647),
      key("optimizer.name", &C::optimizer, "adamw or sgd", 0, 0, {"adamw", "sgd"}),
      key("optimizer.lr", &C::lr, "peak learning rate", 0, 10),
      key("optimizer.beta1", &C::beta1, "AdamW beta1", 0, 0.999999),
      key("optimizer.beta2", &C::beta2, "AdamW beta2", 0, 0.999999),
      key("optimizer.eps", &C::eps, "AdamW epsilon", 0, 1),
      key("optimizer.weight_decay", &C::weight_decay, "decoupled weight decay, applied to matrices only", 0, 10),
      key("optimizer.state_dtype", &C::state_dtype, "AdamW's moments stored as fp32, or bf16 (half the memory)", 0, 0, {"fp32", "bf16"}),
      key("optimizer.momentum", &C::momentum, "SGD momentum", 0, 0.999999),
      key("optimizer.grad_clip", &C::grad_clip, "clip the global gradient norm to this (0: off)", 0, 1e9),
      key("schedule.warmup_steps", &C::warmup_steps, "linear warm-up steps", 0, 1e12),
      key("schedule.decay", &C::decay, "cosine, linear or constant after warm-up", 0, 0, {"cosine", "linear", "constant"}),
      key("schedule.min_lr", &C::min_lr, "learning rate at the end of the decay", 0, 10),
      key("eval.every", &C::eval_every, "evaluate every N steps (0: only at the end)", 0, 1e12),
      key("eval.batches", &C::eval_batches, "validation batches per evaluation", 1, 1e6),
      key("eval.target_loss", &C::target_loss, "stop when the validation loss reaches this (0: never), like MLPerf", 0, 1e6),
      key("checkpoint.dir", &C::out_dir, "run folder: checkpoints, logs, metrics, plot and export"),
      key("checkpoint.every", &C::checkpoint_every, "write a checkpoint every N steps (0: only at the end; -1: never)", -1, 1e12),
      key("checkpoint.keep", &C::keep, "how many recent checkpoints to keep", 1, 1e6),
      key("checkpoint.resume", &C::resume, "auto: continue from the newest complete checkpoint; never: start a new run (refused where checkpoints exist)", 0, 0, {"auto", "never"}),
      key("checkpoint.export_hf", &C::export_hf, "export the final model in Hugging Face layout to <dir>/hf"),
      key("checkpoint.export_dtype", &C::export_dtype, "the export's weights as fp32, or bf16 (as Meta's releases; half the size)", 0, 0, {"fp32", "bf16"}),
      key("distributed.shard_optimizer", &C::shard_optimizer,
          "under mpirun: each rank keeps and updates only its share of the parameters' optimizer state (ZeRO stage 1)"),
      key("distributed.bucket_mib", &C::bucket_mib, "under mpirun: gradients are summed across ranks in buckets of about this many MiB", 1, 65536),
      key("log.every", &C::log_every, "log a line every N steps", 1, 1e12),
      key("log.mllog", &C::mllog, "print MLPerf-style :::MLLOG lines"),
      key("log.plot", &C::plot, "draw the loss curves to <dir>/loss.svg with gnuplot when it is installed"),
  };
  return keys;
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
      throw Error(where + ": " + key.path + " = " + shown.str() + " is out of range [" + toml_number(key.min) + ", " + toml_number(key.max) + "]");
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

TrainConfig config_from_table(const toml::table& root, const std::string& where);

// TOML text to a table. Table headers are checked first: toml++ 3.3 enters its key parser on
// "[=", "[[[" or "[\0" against an internal precondition (an assertion in debug builds, undefined
// in release ones; fixed upstream after 3.3), found by tests/fuzz/fuzz_train_config.cpp.
toml::table parse_toml(const std::string& text, const std::string& where) {
  if (size_t nul = text.find('\0'); nul != std::string::npos)
    throw Error("cannot read config " + where + ": a NUL byte at offset " + std::to_string(nul) + "; a config is a TOML text file");
  // Non-ASCII text only inside strings and comments: toml++ 3.3's whitespace table reaches an
  // unreachable branch for some code points (U+FEFE, also found by the fuzzer).
  for (size_t i = 0, line = 1; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') ++line;
    if (c == '#') i = std::min(text.find('\n', i), text.size()) - 1;
    else if (c == '"' || c == '\'') {
      std::string quote = text.compare(i, 3, std::string(3, c)) == 0 ? std::string(3, c) : std::string(1, c);
      size_t end = i + quote.size();
      while (end < text.size() && text.compare(end, quote.size(), quote) != 0) {
        if (text[end] == '\n') ++line;
        end += c == '"' && text[end] == '\\' ? 2 : 1;
      }
      i = std::min(end + quote.size(), text.size()) - 1;
    } else if (static_cast<unsigned char>(c) >= 0x80) {
      throw Error("cannot read config " + where + ":" + std::to_string(line) +
                  ": a non-ASCII character outside a string or comment; TOML keys and values are ASCII");
    }
  }
  auto key_start = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '"' || c == '\''; };
  std::istringstream lines(text);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line[i] != '[') continue;
    i = line.find_first_not_of(" \t", i + 1 + (i + 1 < line.size() && line[i + 1] == '['));
    if (i == std::string::npos || !key_start(line[i]))
      throw Error("cannot read config " + where + ":" + std::to_string(number) + ": a [section] header must start with its name");
  }
  try {
    return toml::parse(text, where);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << where << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw Error("cannot read config " + msg.str());
  }
}

}  // namespace

TrainConfig load_train_config(const std::string& path, const std::vector<std::string>& overrides) {
  toml::table root;
  std::string where = path.empty() ? "the default config" : path;
  if (!path.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw Error("config " + path + " is a folder; pass a TOML file such as apps/configs/mini_mlperf_cpu.toml");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot read config " + path + ": the file is missing or unreadable");
    std::stringstream text;
    text << in.rdbuf();
    root = parse_toml(text.str(), path);
  }
  for (auto& o : overrides) apply_override(root, o);
  if (!overrides.empty()) where += " with --set overrides";
  return config_from_table(root, where);
}

TrainConfig parse_train_config(const std::string& text, const std::string& where) { return config_from_table(parse_toml(text, where), where); }

namespace {

TrainConfig config_from_table(const toml::table& root, const std::string& where) {
  TrainConfig c;
  for (auto&& [section, node] : root) {
    const auto* table = node.as_table();
    if (!table) throw Error(where + ": top-level key '" + std::string(section.str()) + "' must be a [section]" + suggestion(std::string(section.str()) + ".x"));
    for (auto&& [leaf, value] : *table) {
      std::string key = std::string(section.str()) + "." + std::string(leaf.str());
      auto it = std::find_if(schema().begin(), schema().end(), [&](const Key& k) { return key == k.path; });
      if (it == schema().end()) throw Error(where + ": unknown key " + key + suggestion(key));
      check_value(*it, value, where);
      it->set(c, value);
      c.set_keys.insert(key);
    }
  }
  if (c.num_heads % c.num_kv_heads != 0) throw Error(where + ": model.num_kv_heads (" + std::to_string(c.num_kv_heads) + ") must divide model.num_heads (" + std::to_string(c.num_heads) + ")");
  if (c.hidden_size % c.num_heads != 0) throw Error(where + ": model.hidden_size must be a multiple of model.num_heads");
  if (c.data_source == "file" && c.data_path.empty()) throw Error(where + ": data.source = \"file\" needs data.path");
  if (c.data_source != "file" && !c.val_path.empty())
    throw Error(where + ": data.val_path is set but data.source = \"" + c.data_source + "\" reads no files; set data.source = \"file\" or drop data.val_path");
  if (c.min_lr > c.lr) throw Error(where + ": schedule.min_lr (" + std::to_string(c.min_lr) + ") exceeds optimizer.lr (" + std::to_string(c.lr) + ")");
  return c;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> config_values(const TrainConfig& c) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& k : schema()) out.push_back({k.path, k.show(c)});
  return out;
}

std::string config_to_toml(const TrainConfig& c) {
  std::string out, section;
  for (auto& k : schema()) {
    std::string path = k.path, sec = path.substr(0, path.find('.'));
    if (sec != section) {
      out += (out.empty() ? "" : "\n") + ("[" + sec + "]\n");
      section = sec;
    }
    std::string line = path.substr(path.find('.') + 1) + " = " + k.show(c);
    line.append(line.size() < 40 ? 40 - line.size() : 1, ' ');
    out += line + "# " + k.doc + "\n";
  }
  return out;
}

}  // namespace lathe::app
