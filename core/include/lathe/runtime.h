// Realizing the graph: schedule it into kernels, lower, compile (cached) and run them on the
// nodes' devices. Also the counters that tests and LATHE_DEBUG read.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lathe/device.h"
#include "lathe/graph.h"

namespace lathe {

// Schedules and runs everything needed for `roots`; afterwards each realized node holds a buffer.
void realize_nodes(const std::vector<Node*>& roots);

// The one kernel that computes `root` (whose inputs are realized), lowered and compiled as
// realize would, with device handles of its buffers: for timing launches alone (lathe bench).
// An Error when `root` takes more than one kernel.
struct PreparedKernel {
  std::unique_ptr<Program> program;
  std::vector<void*> handles;
  std::vector<std::shared_ptr<Buffer>> buffers;  // kept alive while the handles are used
};
PreparedKernel prepare_kernel(Node* root);

struct RuntimeStats {
  int64_t kernels_run = 0;
  int64_t kernels_compiled = 0;  // programs built in this process (disk-cache hits included)
  int64_t copies = 0;
  double device_seconds = 0;     // kernel time, summed when kernels are timed (LATHE_DEBUG >= 1)
  double search_seconds = 0;     // spent timing candidate kernels (LATHE_SEARCH)
  double compile_seconds = 0;    // wall time spent compiling programs (cache hits included)
  // Device memory held by buffers, and the most held at once since the last reset_peak().
  std::atomic<int64_t> bytes_live{0}, bytes_peak{0};
  void reset_peak() { bytes_peak = bytes_live.load(); }
};
RuntimeStats& runtime_stats();

// While one is alive, realize schedules, lowers and plans memory as usual but compiles,
// launches, allocates and copies nothing: a buffer's first use counts its bytes and gives a
// placeholder handle, reads give zeros. The peak it counts is the peak a real run counts
// (`lathe train --dry-run` predicts a step's memory before, or instead of, running it).
class DryRun {
 public:
  DryRun();
  ~DryRun();
  DryRun(const DryRun&) = delete;
  DryRun& operator=(const DryRun&) = delete;
};
bool dry_run_active();

// LATHE_DEBUG level, read once.
int debug_level();

}  // namespace lathe
