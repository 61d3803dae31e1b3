// Finds runs of four loads (or stores) of 32-bit elements or 16-bit floats of one buffer at
// consecutive addresses, the first a multiple of four, in one block of a kernel: a dialect with
// vector types renders each run as one access (a load at the run's first lane, a store at its last).
#pragma once
#include <array>
#include <vector>

#include "lathe/kernel.h"

namespace lathe {

struct VectorRun {
  std::array<int, 4> lanes;  // instruction index of each lane, in address order
  int at;                    // instruction where the vector access is rendered
};

struct VectorPlan {
  std::vector<int> run_of;  // per instruction: index into runs, or -1
  std::vector<VectorRun> runs;
};

VectorPlan plan_vector_access(const Kernel& kernel);

}  // namespace lathe
