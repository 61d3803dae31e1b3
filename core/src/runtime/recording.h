// Internal: what realize launches while a step is being captured. realize.cpp appends to the
// active recording; capture.cpp turns it into a replayable plan.
#pragma once
#include <memory>
#include <unordered_set>
#include <vector>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/kernel.h"

namespace lathe {

struct RecordedLaunch {
  std::shared_ptr<Program> program;  // null: a copy from buffers[1] into buffers[0]
  const Kernel* kernel = nullptr;    // lives in the lowering cache for the process
  std::vector<std::shared_ptr<Buffer>> buffers;  // a kernel's parameters, its output first
};

struct Recording {
  std::vector<RecordedLaunch> launches;
  std::unordered_set<Buffer*> host_writes;  // buffers filled from the host while recording
};

// The recording realize appends to; null when nothing is being captured.
Recording*& active_recording();

}  // namespace lathe
