// A KFD without a GPU, behind the same Driver boundary as the real one. It keeps the state
// the kernel keeps (address-space reservations, allocations and their GPU and CPU mappings,
// queues, events), checks every ioctl argument the way the KFD does (returning the same
// errno), and services each AQL queue: when the doorbell moves it reads the packets from the
// ring, checks header, grid, kernel object and kernarg segment, runs the kernel, decrements the
// completion signal and fires its event.
//
// It cannot run AMDGPU machine code. A kernel runs as its CPU twin: the same kernel IR rendered
// in C, registered under the kernel descriptor and machine code it was compiled to; at dispatch
// the driver finds the twin by reading the descriptor and code at the packet's kernel_object in
// its own memory (so a wrongly placed or relocated code object is caught), and passes it the
// buffer addresses read from the kernarg segment exactly as the GPU kernel would read them.
// GPU addresses equal process addresses here; each one is checked to lie in a live, mapped
// allocation before it is used.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aql.h"
#include "code_object.h"
#include "driver.h"

namespace lathe::amd {

class TestDriver : public Driver {
 public:
  // The GPU it pretends to be: gfx942 (wave64), or gfx90a or gfx1100 (wave32).
  explicit TestDriver(const std::string& target = "gfx942");
  ~TestDriver() override;

  int open(const std::string& path, int flags) override;
  int ioctl(int fd, unsigned long request, void* arg) override;
  void* mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) override;
  int munmap(void* addr, size_t length) override;
  int close(int fd) override;
  std::string topology_root() const override { return topology_root_; }
  std::string name() const override { return "test driver"; }

  // `pointer_args` 8-byte kernel arguments are passed to the twin as host pointers.
  bool runs_twins() const override { return true; }
  void register_twin(const CodeObject& code, const std::string& kernel, int pointer_args, Twin twin) override;
  // The kernel rendered in the cpu backend's C dialect and built with its C compiler wrapper.
  Twin kernel_twin(const Kernel& kernel) override;

  // What the driver saw, for tests.
  struct Stats {
    int64_t dispatches = 0, barriers = 0, allocations_live = 0;
    std::vector<std::string> ioctl_log;  // names in call order
  };
  Stats stats() const;
  std::string fault() const override;  // the first error the packet processor met, or ""

 protected:
  struct Allocation {
    uint64_t va, size, handle;
    uint32_t flags;
    bool gpu_mapped = false, cpu_mapped = false;
  };
  struct Queue {
    uint32_t id;
    uint64_t ring, ring_size, wptr, rptr;
    uint64_t* doorbell;
    uint64_t read_index = 0;
  };
  struct TwinEntry {
    std::vector<uint8_t> descriptor, code;
    int pointer_args;
    Twin twin;
  };

  // The allocation holding [va, va+bytes), mapped to the GPU, or null.
  const Allocation* gpu_range(uint64_t va, uint64_t bytes) const;
  void fail(const std::string& what);
  // The kernarg segment in GPU memory and aligned, the group segment as large as the kernel's.
  bool segments_ok(const KernelDispatchPacket& packet, const KernelDescriptor& kd);
  // Runs a checked dispatch packet's kernel (here: its CPU twin); false after fail().
  virtual bool execute(const KernelDispatchPacket& packet, uint64_t packet_va, const KernelDescriptor& kd);

 private:
  int kfd_ioctl(unsigned long request, void* arg);
  int drm_ioctl(unsigned long request, void* arg);
  Allocation* find_handle(uint64_t handle);
  void service();
  bool process(Queue& q);
  void signal_event(uint32_t event_id);

  mutable std::mutex mu_;
  std::condition_variable events_cv_;
  std::string topology_root_;
  bool kfd_open_ = false, drm_open_ = false, vm_acquired_ = false;
  std::map<uint64_t, uint64_t> reservations_;  // va -> size, from anonymous mmaps
  std::map<uint64_t, Allocation> allocations_;  // by va
  uint64_t next_handle_ = 1;
  std::vector<Queue> queues_;
  std::vector<void*> doorbell_pages_;
  std::map<uint32_t, uint32_t> events_;  // id -> slot
  std::map<uint32_t, bool> signaled_;
  uint64_t events_page_ = 0;
  std::multimap<uint64_t, TwinEntry> twins_;  // by a hash of the descriptor
  std::string fault_;
  Stats stats_;
  std::atomic<bool> stop_{false};
  std::thread service_;
};

// The GPU the test driver describes (a gfx942 node with one XCC).
constexpr uint32_t kTestGpuId = 4242;

}  // namespace lathe::amd
