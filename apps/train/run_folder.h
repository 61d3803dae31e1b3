// A run folder belongs to one model: run.json records its shape, a rerun with another shape is
// refused before anything in the folder changes, and the folder is checked writable up front.
#pragma once
#include <string>

#include "lathe/models/llama_config.h"
#include "config.h"

namespace lathe::app {

// Checks `config.out_dir` before the first step: a writable folder (created if missing); when it
// holds a run, one of the same model shape (else an error naming the keys that differ, the
// folder, and how to start a new run); and, with checkpoint.resume = "never", no checkpoints
// that starting over would replace.
void claim_run_folder(const TrainConfig& config, const models::LlamaConfig& model);
// Records the model's shape in run.json for later reruns, once the folder is known to be this
// model's (claimed, and its checkpoint, if any, loaded).
void record_run_model(const TrainConfig& config, const models::LlamaConfig& model);

}  // namespace lathe::app
