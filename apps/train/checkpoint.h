// Training checkpoints: <run>/checkpoints/step_NNNNNNNN/ holding the model, the optimizer state
// and state.json (step, sampler and generator states), with the model's config.json beside them
// (each checkpoint is also a Hugging Face model folder). Each is written under a temporary name
// and renamed only when every file is on disk, so a crash mid-write never leaves a folder that
// looks complete; state.json carries each file's checksum, verified on load. Under several
// ranks, rank 0 writes the model and the folder, and with a sharded optimizer each rank writes
// its parameters' moments to a file of its own; moments are found by parameter name on load, so
// a run may resume on another number of ranks, sharded or not.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lathe/models/llama.h"
#include "communicator.h"
#include "lathe/ops/optim.h"

namespace lathe::app {

struct TrainState {
  int64_t step = 0;  // optimizer steps completed
  uint64_t train_rng = 0, val_rng = 0;
  std::pair<uint64_t, uint64_t> tensor_rng{0, 0};
  double elapsed_s = 0;  // training time before this run, for time-to-target
};

// The optimizer state a rank keeps: none (SGD), AdamW over every parameter, or under a sharded
// optimizer AdamW over this rank's parameters; names[i] names adamw->params()[i].
struct OptimizerState {
  ops::AdamW* adamw = nullptr;
  std::vector<std::string> names;
  bool sharded = false;
};

// Every rank calls it; returns the bytes written (the tensors are streamed to disk one at a time).
uint64_t save_checkpoint(const std::string& run_dir, const models::LlamaModel& model, const OptimizerState& optimizer, const TrainState& state,
                         int keep, Communicator& comm);
// The newest checkpoint that loads completely and matches its checksums (damaged ones are
// skipped with a warning); none when the folder has none; an error when it has some but none loads.
std::optional<TrainState> load_latest_checkpoint(const std::string& run_dir, models::LlamaModel& model, const OptimizerState& optimizer);
std::vector<std::string> list_checkpoints(const std::string& run_dir);  // complete ones, oldest first

}  // namespace lathe::app
