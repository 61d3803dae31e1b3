// Running one AQL kernel dispatch on the emulator: the work-groups of the grid, their waves
// started in the state a real dispatch gives (user and system SGPRs from the kernel
// descriptor, work-item ids in v0, EXEC over the group's lanes), barriers across a group's waves.
#pragma once
#include <cstdint>

#include "../code_object.h"
#include "gcn_program.h"
#include "gcn_wave.h"

namespace lathe::amd::emu {

struct DispatchShape {
  uint32_t grid[3] = {1, 1, 1}, group[3] = {1, 1, 1};  // work-items
  uint32_t group_segment_bytes = 0;                     // LDS per work-group, as the packet asks
  uint64_t kernarg_address = 0, packet_address = 0;
};

struct DispatchStats {
  uint64_t instructions = 0, waves = 0;
};

// Throws Fault naming the kernel, the work-group and the wave when the code faults.
DispatchStats run_dispatch(const Program& program, const KernelDescriptor& kd, const DispatchShape& shape, Memory& memory);

}  // namespace lathe::amd::emu
