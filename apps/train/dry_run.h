// `lathe train --dry-run`: one step planned but not run, and what its memory would be.
#pragma once
#include "lathe/device.h"
#include "lathe/models/data.h"
#include "train_step.h"

namespace lathe::app {

struct TrainConfig;

// Runs `step` once under the DryRun that the caller holds (nothing is allocated, compiled or
// launched) and prints parameters, what the step leaves allocated, and its peak, against the
// device's memory. Returns the predicted peak in bytes.
int64_t report_dry_run(const TrainConfig& c, const models::LlamaModel& model, TrainStep& step, const models::TokenSource& data,
                       Device* device);

// The process's peak resident host memory so far, in bytes.
int64_t host_peak_resident_bytes();

}  // namespace lathe::app
