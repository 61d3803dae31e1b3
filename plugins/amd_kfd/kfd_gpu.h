// One GPU driven through the KFD: the process address space on it (ACQUIRE_VM), memory
// (VRAM, GTT, userptr; mapped to the GPU and, when host-visible, into the process at the same
// address), one AQL compute queue with its doorbell, and a completion signal backed by a KFD
// event so that waits can sleep. See docs/amd_kfd.md for the ioctl sequence.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "aql.h"
#include "driver.h"
#include "topology.h"

namespace lathe::amd {

enum class MemoryKind { Vram, Gtt, Userptr };

struct GpuMemory {
  uint64_t va = 0;  // GPU address; the same address in the process when host-visible
  size_t size = 0;
  uint64_t handle = 0;
  MemoryKind kind = MemoryKind::Vram;
  void* host = nullptr;  // null unless host-visible
};

class KfdGpu {
 public:
  KfdGpu(Driver& driver, const GpuNode& node);
  ~KfdGpu();
  KfdGpu(const KfdGpu&) = delete;
  KfdGpu& operator=(const KfdGpu&) = delete;

  // Throws OutOfMemoryError when the driver has no room (ENOMEM).
  GpuMemory alloc(size_t bytes, MemoryKind kind, bool host_visible, bool executable = false);
  void free(const GpuMemory& m);

  // Queues a dispatch behind every earlier one; returns at once.
  void dispatch(uint64_t kernel_object, uint64_t kernarg_va, uint32_t work_items, uint16_t group_size,
                uint32_t group_segment_bytes, uint32_t private_segment_bytes);
  // Returns when every queued dispatch has completed: polls briefly, then sleeps in WAIT_EVENTS.
  void wait_idle();

  const GpuNode& node() const { return node_; }
  const std::string& description() const { return description_; }
  uint64_t vram_bytes() const { return vram_bytes_; }

 private:
  int ioctl(int fd, unsigned long request, void* arg, const char* what);
  void create_queue();

  Driver& d_;
  GpuNode node_;
  int kfd_ = -1, drm_ = -1;
  std::string description_;
  uint64_t vram_bytes_ = 0;
  std::mutex memory_mu_;          // programs are compiled, and their code placed, on several threads
  std::vector<GpuMemory> owned_;  // freed in reverse on destruction
  GpuMemory ring_, queue_desc_, eop_, cwsr_, signal_mem_, events_page_;
  AmdQueue* queue_ = nullptr;
  AmdSignal* signal_ = nullptr;
  void* doorbell_page_ = nullptr;
  uint64_t* doorbell_ = nullptr;
  uint32_t queue_id_ = 0, event_id_ = 0, ring_packets_ = 0;
  bool have_queue_ = false, have_event_ = false;
  uint64_t write_index_ = 0;
};

}  // namespace lathe::amd
