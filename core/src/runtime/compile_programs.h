// Internal: the parallel, batched compilation of the kernels a schedule still lacks. The
// programs are kept by the lowering cache (CachedLowering::programs), the one program cache.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "lathe/device.h"

namespace lathe {

// A kernel to compile: its device, IR and the IR's text (kernels of equal text compile once).
struct CompileJob {
  Device* device;
  const Kernel* kernel;
  const std::string* key;
};

// Compiles every kernel given: in as many batches as there are cores, each batch on
// its own thread (compilers are single-threaded processes, and a training step's first run
// needs hundreds of kernels); a backend may build a whole batch as one program.
void compile_missing(const std::vector<CompileJob>& jobs, std::vector<std::shared_ptr<Program>>& out);

}  // namespace lathe
