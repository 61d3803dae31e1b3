// Device buffers carved as sub-buffers out of a few large allocations ("slabs"). A driver may
// charge every launch per distinct allocation among its arguments: on an H100, NVIDIA's
// OpenCL took 9.6-11.0 us to enqueue a kernel with 32 separate buffers and 4.8-5.6 us with 32
// sub-buffers of one buffer (scripts/opencl_enqueue_cost.c). Not thread-safe: the device
// holds its lock around every call.
#pragma once
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <cstddef>
#include <map>
#include <unordered_map>
#include <vector>

namespace lathe::opencl {

class SlabMemory {
 public:
  // alignment: of sub-buffer origins (CL_DEVICE_MEM_BASE_ADDR_ALIGN, in bytes); max_alloc:
  // the largest single allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE); slab_bytes: the first slab's size.
  SlabMemory(cl_context context, size_t alignment, size_t max_alloc, size_t slab_bytes = size_t{256} << 20);
  // A buffer of `bytes`, or nullptr with the driver's error in *error when no slab has room
  // and no new one can be made.
  cl_mem allocate(size_t bytes, cl_int* error);
  void release(cl_mem buffer);  // its range goes back to its slab
  bool release_empty_slabs();   // slabs with nothing in them go back to the driver; true if any
  size_t max_alloc() const { return max_alloc_; }

 private:
  struct Slab {
    cl_mem buffer = nullptr;
    size_t bytes = 0;
    std::map<size_t, size_t> free;  // offset -> length, neighbours merged
  };
  struct Placement {
    size_t slab, offset, length;
  };
  cl_mem carve(size_t slab, size_t length, size_t bytes, cl_int* error);
  void give_back(const Placement& p);

  cl_context context_;
  size_t alignment_, max_alloc_, slab_bytes_;
  size_t last_slab_ = 0;  // the newest slab's size, 0 before the first
  std::vector<Slab> slabs_;  // released slabs stay as empty entries: placements index them
  std::unordered_map<cl_mem, Placement> placed_;
};

}  // namespace lathe::opencl
