// Internal: the two things a schedule or a replayed step does on a device, shared by
// realize.cpp and capture.cpp so both count, time and log them the same way.
#pragma once
#include <vector>

#include "base/debug.h"
#include "lathe/buffer.h"
#include "lathe/device.h"

namespace lathe {

// Runs a compiled kernel on buffer handles (its output first). `timed`, or at LATHE_DEBUG >= 1,
// it waits for the kernel and returns its device time (at LATHE_DEBUG >= 1 also logs it).
double launch_kernel(Program& program, const Kernel& kernel, Device* device, const std::vector<void*>& handles, bool timed = false);

// Copies a whole buffer into one of the same size on another device, through the host.
void copy_buffer(Buffer& source, Buffer& destination);

}  // namespace lathe
