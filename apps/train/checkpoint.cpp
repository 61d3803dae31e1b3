#include "checkpoint.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lathe/models/atomic_file.h"
#include "lathe/models/hf_checkpoint.h"
#include "lathe/models/safetensors.h"

namespace lathe::app {
namespace fs = std::filesystem;

namespace {

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

// A 64-bit checksum of a file (four multiply-rotate lanes over 8-byte words, then the tail):
// fast enough to verify tens of GB on load, and any damaged word changes it.
std::string file_checksum(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + " is missing");
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL, kMix = 0xC2B2AE3D27D4EB4FULL;
  uint64_t lane[4] = {1, 2, 3, 4}, length = 0;
  std::vector<char> buf(size_t{1} << 20);
  auto mix = [&](uint64_t& h, uint64_t w) { h = ((h ^ (w * kMix)) << 31 | (h ^ (w * kMix)) >> 33) * kMul; };
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    size_t n = static_cast<size_t>(in.gcount()), i = 0;
    for (; i + 32 <= n; i += 32)
      for (int l = 0; l < 4; ++l) {
        uint64_t w;
        std::memcpy(&w, buf.data() + i + 8 * l, 8);
        mix(lane[l], w);
      }
    for (; i < n; ++i) mix(lane[0], static_cast<unsigned char>(buf[i]) + 0x100);
    length += n;
  }
  uint64_t h = length;
  for (uint64_t l : lane) mix(h, l);
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

// optimizer.safetensors, or under a sharded optimizer one file per rank.
std::string optimizer_file(bool sharded, const Communicator& comm) {
  if (!sharded) return "optimizer.safetensors";
  char buf[64];
  std::snprintf(buf, sizeof buf, "optimizer.rank%05d-of-%05d.safetensors", comm.rank(), comm.size());
  return buf;
}

void sync_dir(const fs::path& dir) {
  models::AtomicFile marker((dir / ".complete").string());
  marker.commit();
}

}  // namespace

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  std::vector<std::string> out;
  fs::path root = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  for (auto& e : fs::directory_iterator(root, ec)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("step_", 0) == 0 && name.find('.') == std::string::npos && fs::exists(e.path() / ".complete"))
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t save_checkpoint(const std::string& run_dir, const models::LlamaModel& model, const OptimizerState& optimizer, const TrainState& s,
                         int keep, Communicator& comm) {
  fs::path root = fs::path(run_dir) / "checkpoints";
  fs::path final_dir = root / step_name(s.step), tmp = root / (step_name(s.step) + ".tmp");
  const bool primary = comm.rank() == 0;
  if (primary) {
    fs::create_directories(root);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  }
  comm.barrier();
  auto params = model.parameters();
  if (primary) {
    models::save_safetensors((tmp / "model.safetensors").string(), params);
    // With config.json the folder is a Hugging Face model folder too (transformers, lathe generate).
    models::write_file_atomically((tmp / "config.json").string(), models::llama_config_json(model.config()));
  }
  if (optimizer.adamw && (primary || optimizer.sharded)) {
    std::vector<std::pair<std::string, Tensor>> opt;
    for (size_t i = 0; i < optimizer.names.size(); ++i) {
      opt.push_back({"exp_avg." + optimizer.names[i], optimizer.adamw->exp_avg()[i]});
      opt.push_back({"exp_avg_sq." + optimizer.names[i], optimizer.adamw->exp_avg_sq()[i]});
    }
    models::save_safetensors((tmp / optimizer_file(optimizer.sharded, comm)).string(), opt);
  }
  comm.barrier();  // every rank's file is on disk
  uint64_t bytes = 0;
  if (primary) {
    nlohmann::json j = {{"step", s.step},
                        {"train_rng", std::to_string(s.train_rng)},
                        {"val_rng", std::to_string(s.val_rng)},
                        {"tensor_rng_seed", std::to_string(s.tensor_rng.first)},
                        {"tensor_rng_calls", std::to_string(s.tensor_rng.second)},
                        {"optimizer_steps", optimizer.adamw ? optimizer.adamw->steps() : s.step},
                        {"ranks", comm.size()},
                        {"elapsed_s", s.elapsed_s}};
    nlohmann::json sums;
    for (auto& e : fs::directory_iterator(tmp)) {
      std::string file = e.path().filename().string();
      if (file.size() > 12 && file.compare(file.size() - 12, 12, ".safetensors") == 0)
        sums[file] = file_checksum(e.path()), bytes += fs::file_size(e.path());
    }
    j["checksums"] = sums;
    models::write_file_atomically((tmp / "state.json").string(), j.dump(2) + "\n");
    sync_dir(tmp);
    fs::remove_all(final_dir);
    fs::rename(tmp, final_dir);
    auto all = list_checkpoints(run_dir);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i]);
  }
  comm.barrier();  // no rank runs ahead of a checkpoint that is not yet complete
  return bytes;
}

std::optional<TrainState> load_latest_checkpoint(const std::string& run_dir, models::LlamaModel& model, const OptimizerState& optimizer) {
  ops::AdamW* adamw = optimizer.adamw;
  auto all = list_checkpoints(run_dir);
  std::string reasons;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    fs::path dir(*it);
    try {
      std::ifstream f(dir / "state.json");
      if (!f) throw Error("state.json is missing");
      nlohmann::json j = nlohmann::json::parse(f);
      TrainState s;
      s.step = j.at("step").get<int64_t>();
      s.train_rng = std::stoull(j.at("train_rng").get<std::string>());
      s.val_rng = std::stoull(j.at("val_rng").get<std::string>());
      s.tensor_rng = {std::stoull(j.at("tensor_rng_seed").get<std::string>()), std::stoull(j.at("tensor_rng_calls").get<std::string>())};
      s.elapsed_s = j.value("elapsed_s", 0.0);
      // Each file this rank reads is checked against its checksum before use (not the other ranks' shards).
      auto verify = [&](const std::string& file) {
        if (j.contains("checksums") && j["checksums"].contains(file) && file_checksum(dir / file) != j["checksums"][file].get<std::string>())
          throw Error(file + " does not match its checksum: the file is damaged");
      };
      verify("model.safetensors");
      models::SafetensorsFile weights((dir / "model.safetensors").string());
      // The same parameters, no more and no fewer: a checkpoint of two layers is not a one-layer model's.
      auto params_now = model.parameters();
      if (weights.tensors().size() != params_now.size())
        throw Error("it holds " + std::to_string(weights.tensors().size()) + " tensors, the model has " + std::to_string(params_now.size()) + " parameters");
      for (auto& [name, p] : params_now)
        if (weights.info(name).shape != p.shape())
          throw Error(name + " has shape " + to_string(weights.info(name).shape) + " there, " + to_string(p.shape()) + " in the model");
      std::vector<std::pair<std::string, Tensor>> loaded;
      for (auto& [name, p] : model.parameters()) loaded.push_back({name, weights.load(name, model.device()).cast(DType::Float32)});
      std::vector<Tensor> m, v;
      if (adamw) {
        // The moments by parameter name, from whichever optimizer file holds them.
        std::vector<std::string> file_names{"optimizer.safetensors"};  // a checkpoint from before checksums
        if (j.contains("checksums")) {
          file_names.clear();
          for (auto& [file, sum] : j["checksums"].items())
            if (file.rfind("optimizer", 0) == 0) file_names.push_back(file);
        }
        std::vector<std::unique_ptr<models::SafetensorsFile>> files;  // headers only until a tensor is loaded
        for (const std::string& file : file_names) files.push_back(std::make_unique<models::SafetensorsFile>((dir / file).string()));
        std::vector<bool> verified(files.size(), false);
        auto find = [&](const std::string& name) -> const models::SafetensorsFile& {
          for (size_t f = 0; f < files.size(); ++f)
            if (files[f]->contains(name)) {
              if (!verified[f]) verify(file_names[f]), verified[f] = true;
              return *files[f];
            }
          throw Error("no optimizer file holds " + name);
        };
        for (size_t i = 0; i < optimizer.names.size(); ++i) {
          const std::string& name = optimizer.names[i];
          // In the dtype this run stores them in (a run may resume with another optimizer.state_dtype).
          m.push_back(find("exp_avg." + name).load("exp_avg." + name, model.device()).cast(adamw->exp_avg()[i].dtype()));
          v.push_back(find("exp_avg_sq." + name).load("exp_avg_sq." + name, model.device()).cast(adamw->exp_avg_sq()[i].dtype()));
        }
      }
      // Everything read: only now change the model and optimizer.
      std::vector<Tensor> done;
      auto params = model.parameters();
      NoGradGuard no_grad;
      for (size_t i = 0; i < params.size(); ++i) done.push_back(params[i].second.assign(loaded[i].second));
      for (size_t i = 0; i < m.size(); ++i) {
        done.push_back(adamw->exp_avg()[i].assign(m[i]));
        done.push_back(adamw->exp_avg_sq()[i].assign(v[i]));
      }
      realize(done);
      if (adamw) adamw->set_steps(j.at("optimizer_steps").get<int64_t>());
      return s;
    } catch (const std::exception& e) {
      spdlog::warn("checkpoint {} cannot be used ({}); trying an older one", dir.string(), e.what());
      reasons += "\n  " + dir.filename().string() + ": " + e.what();
    }
  }
  // Starting over would write new checkpoints and logs over the run: refuse instead.
  if (!all.empty())
    throw Error("none of the " + std::to_string(all.size()) + " checkpoints in " + run_dir + " can be used:" + reasons +
                "\nNothing was changed. Restore them, or start a new run in another checkpoint.dir (e.g. --set checkpoint.dir=" +
                run_dir + "-2).");
  return std::nullopt;
}

}  // namespace lathe::app
