// The run folder's owner: run.json (the model's shape), checked against every rerun.
#include "run_folder.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/error.h"
#include "lathe/models/atomic_file.h"
#include "checkpoint.h"

namespace lathe::app {
namespace fs = std::filesystem;
namespace {

// The keys that fix the parameters' names and shapes, named as the config names them.
nlohmann::ordered_json model_shape(const models::LlamaConfig& m) {
  return {{"model.vocab_size", m.vocab_size},          {"model.hidden_size", m.hidden_size},
          {"model.intermediate_size", m.intermediate_size}, {"model.num_layers", m.num_hidden_layers},
          {"model.num_heads", m.num_attention_heads},   {"model.num_kv_heads", m.num_key_value_heads},
          {"model.head_dim", m.head_dim},               {"model.tie_embeddings", m.tie_word_embeddings}};
}

void check_writable(const fs::path& dir) {
  const std::string fix = "; set checkpoint.dir to a folder you can write (e.g. --set checkpoint.dir=runs/mine)";
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("checkpoint.dir = " + dir.string() + " is a file, not a folder" + fix);
  fs::create_directories(dir, ec);
  if (ec) throw Error("checkpoint.dir = " + dir.string() + " cannot be created: " + ec.message() + fix);
  fs::path probe = dir / ".write_test";
  { std::ofstream(probe) << "ok"; }
  bool wrote = fs::file_size(probe, ec) == 2 && !ec;
  fs::remove(probe, ec);
  if (!wrote) throw Error("checkpoint.dir = " + dir.string() + " is not writable" + fix);
}

}  // namespace

void claim_run_folder(const TrainConfig& c, const models::LlamaConfig& model) {
  const fs::path dir(c.out_dir), record = dir / "run.json";
  check_writable(dir);
  const std::string new_run = "; to start a new run, set another checkpoint.dir (e.g. --set checkpoint.dir=" + c.out_dir +
                              "-2). Nothing in " + c.out_dir + " was changed.";
  const nlohmann::ordered_json shape = model_shape(model);
  if (std::ifstream in{record}) {
    nlohmann::json owner;
    try {
      owner = nlohmann::json::parse(in).at("model");
    } catch (const nlohmann::json::exception& e) {
      throw Error(record.string() + " is damaged (" + e.what() + "); restore it or move the run folder aside" + new_run);
    }
    std::string differ;
    for (auto& [key, value] : shape.items())
      if (!owner.contains(key) || owner[key] != value)
        differ += (differ.empty() ? "" : ", ") + key + " = " + value.dump() + " (the run has " + (owner.contains(key) ? owner[key].dump() : "none") + ")";
    if (!differ.empty())
      throw Error("run folder " + c.out_dir + " holds a run of another model: " + differ +
                  ". Use the run's settings to resume it" + new_run);
  }
  if (c.resume == "never") {
    auto existing = list_checkpoints(c.out_dir);
    if (!existing.empty())
      throw Error("checkpoint.resume = \"never\", but " + c.out_dir + " already holds a run (newest checkpoint " +
                  fs::path(existing.back()).filename().string() + "), which starting over would replace. Delete the folder yourself " +
                  "if you mean to, or resume it with checkpoint.resume = \"auto\"" + new_run);
  }
}

void record_run_model(const TrainConfig& c, const models::LlamaConfig& model) {
  const fs::path record = fs::path(c.out_dir) / "run.json";
  if (!fs::exists(record)) models::write_file_atomically(record.string(), nlohmann::ordered_json{{"model", model_shape(model)}}.dump(2) + "\n");
}

}  // namespace lathe::app
