#include "test_driver.h"

#include <linux/kfd_ioctl.h>
#include <sys/mman.h>
#include <libdrm/amdgpu_drm.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "aql.h"
#include "lathe/error.h"

namespace lathe::amd {
namespace {

namespace fs = std::filesystem;

constexpr int kKfdFd = 0x4b00, kDrmFd = 0x4b01;
constexpr uint64_t kPage = 4096, kDoorbellBase = uint64_t{1} << 40, kDoorbellPage = 8192;
constexpr uint32_t kTypeMask = KFD_IOC_ALLOC_MEM_FLAGS_VRAM | KFD_IOC_ALLOC_MEM_FLAGS_GTT | KFD_IOC_ALLOC_MEM_FLAGS_USERPTR |
                               KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL | KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP;

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

// A recorded topology for the GPU this driver pretends to be: a node of `target` with 8 CUs.
std::string write_topology(const std::string& target) {
  const char* version = target == "gfx942" ? "90402" : target == "gfx90a" ? "90010" : target == "gfx1100" ? "110000" : nullptr;
  if (!version) throw Error("amd_kfd test driver: cannot pretend to be " + target + " (gfx942, gfx90a or gfx1100)");
  const char* wave = target == "gfx1100" ? "32" : "64";
  fs::path root = fs::temp_directory_path() / ("lathe-kfd-test-" + std::to_string(getpid())) / "nodes";
  fs::create_directories(root / "0");
  std::ofstream(root / "0" / "gpu_id") << 0 << "\n";
  std::ofstream(root / "0" / "properties") << "cpu_cores_count 2\nsimd_count 0\ngfx_target_version 0\n";
  fs::create_directories(root / "1" / "mem_banks" / "0");
  std::ofstream(root / "1" / "gpu_id") << kTestGpuId << "\n";
  std::ofstream(root / "1" / "properties")
      << "cpu_cores_count 0\nsimd_count 32\nsimd_per_cu 4\nwave_front_size " << wave << "\nlds_size_in_kb 64\ngfx_target_version " << version
      << "\n"
         "vendor_id 4098\ndevice_id 29857\ndrm_render_minor 128\nnum_xcc 1\nmax_engine_clk_fcompute 2100\n";
  std::ofstream(root / "1" / "mem_banks" / "0" / "properties") << "heap_type 1\nsize_in_bytes 17179869184\n";
  return root.string();
}

template <class T>
T load(uint64_t va) {
  T v;
  std::memcpy(&v, reinterpret_cast<const void*>(va), sizeof v);
  return v;
}

}  // namespace

TestDriver::TestDriver(const std::string& target) : topology_root_(write_topology(target)) { service_ = std::thread([this] { service(); }); }

TestDriver::~TestDriver() {
  stop_ = true;
  service_.join();
  std::error_code ec;
  fs::remove_all(fs::path(topology_root_).parent_path(), ec);
  for (void* p : doorbell_pages_) ::munmap(p, kDoorbellPage);
}

int TestDriver::open(const std::string& path, int) {
  std::lock_guard<std::mutex> lock(mu_);
  if (path == "/dev/kfd") return kfd_open_ = true, kKfdFd;
  if (path == "/dev/dri/renderD128") return drm_open_ = true, kDrmFd;
  return -ENOENT;
}

int TestDriver::close(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd == kKfdFd && kfd_open_) return kfd_open_ = false, 0;
  if (fd == kDrmFd && drm_open_) return drm_open_ = false, 0;
  return -EBADF;
}

void* TestDriver::mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd == -1) {
    // Address-space reservations are real, writable memory: "GPU memory" lives there.
    void* p = ::mmap(addr, length, PROT_READ | PROT_WRITE, (flags & ~MAP_NORESERVE) | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) reservations_[reinterpret_cast<uint64_t>(p)] = length;
    return p;
  }
  if (fd == kDrmFd && (flags & MAP_FIXED)) {
    // CPU mapping of an allocation: the offset names it, the address must be its GPU address.
    for (auto& [va, a] : allocations_)
      if (a.handle << 12 == static_cast<uint64_t>(offset)) {
        if (a.va != reinterpret_cast<uint64_t>(addr) || a.size != length || !(prot & PROT_WRITE)) return MAP_FAILED;
        if (!(a.flags & (KFD_IOC_ALLOC_MEM_FLAGS_GTT | KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC))) return MAP_FAILED;  // not host-visible
        a.cpu_mapped = true;
        return addr;
      }
    return MAP_FAILED;
  }
  if (fd == kKfdFd && static_cast<uint64_t>(offset) >= kDoorbellBase && length == kDoorbellPage) {
    for (auto& q : queues_)
      if ((kDoorbellBase + uint64_t{q.id} * kDoorbellPage) == static_cast<uint64_t>(offset))
        return q.doorbell;
  }
  return MAP_FAILED;
}

int TestDriver::munmap(void* addr, size_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t va = reinterpret_cast<uint64_t>(addr);
  for (auto& q : queues_)
    if (reinterpret_cast<uint64_t>(q.doorbell) == va) return 0;  // doorbell pages live as long as the driver
  auto it = reservations_.find(va);
  if (it == reservations_.end() || it->second != length) return -EINVAL;
  if (allocations_.count(va)) return -EBUSY;  // the GPU allocation at this address is still alive
  reservations_.erase(it);
  return ::munmap(addr, length) == 0 ? 0 : -errno;
}

TestDriver::Allocation* TestDriver::find_handle(uint64_t handle) {
  for (auto& [va, a] : allocations_)
    if (a.handle == handle) return &a;
  return nullptr;
}

const TestDriver::Allocation* TestDriver::gpu_range(uint64_t va, uint64_t bytes) const {
  auto it = allocations_.upper_bound(va);
  if (it == allocations_.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  if (!a.gpu_mapped || va + bytes > a.va + a.size) return nullptr;
  return &a;
}

int TestDriver::ioctl(int fd, unsigned long request, void* arg) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd == kKfdFd && kfd_open_) return kfd_ioctl(request, arg);
  if (fd == kDrmFd && drm_open_) return drm_ioctl(request, arg);
  return -EBADF;
}

int TestDriver::drm_ioctl(unsigned long request, void* arg) {
  if (request != DRM_IOCTL_AMDGPU_INFO) return -EINVAL;
  auto* q = static_cast<drm_amdgpu_info*>(arg);
  stats_.ioctl_log.push_back("AMDGPU_INFO");
  if (q->query == AMDGPU_INFO_DEV_INFO) {
    drm_amdgpu_info_device dev{};
    dev.device_id = 0x74a1;
    dev.cu_active_number = 8;
    dev.max_engine_clock = 2100000;
    std::memcpy(reinterpret_cast<void*>(q->return_pointer), &dev, std::min<size_t>(q->return_size, sizeof dev));
    return 0;
  }
  if (q->query == AMDGPU_INFO_VRAM_GTT) {
    drm_amdgpu_info_vram_gtt mem{uint64_t{16} << 30, uint64_t{16} << 30, uint64_t{64} << 30};
    std::memcpy(reinterpret_cast<void*>(q->return_pointer), &mem, std::min<size_t>(q->return_size, sizeof mem));
    return 0;
  }
  return -EINVAL;
}

int TestDriver::kfd_ioctl(unsigned long request, void* arg) {
  switch (request) {
    case AMDKFD_IOC_GET_VERSION: {
      stats_.ioctl_log.push_back("GET_VERSION");
      auto* a = static_cast<kfd_ioctl_get_version_args*>(arg);
      a->major_version = KFD_IOCTL_MAJOR_VERSION;
      a->minor_version = KFD_IOCTL_MINOR_VERSION;
      return 0;
    }
    case AMDKFD_IOC_ACQUIRE_VM: {
      stats_.ioctl_log.push_back("ACQUIRE_VM");
      auto* a = static_cast<kfd_ioctl_acquire_vm_args*>(arg);
      if (a->gpu_id != kTestGpuId) return -EINVAL;
      if (static_cast<int>(a->drm_fd) != kDrmFd || !drm_open_) return -EBADF;
      if (vm_acquired_) return -EBUSY;
      vm_acquired_ = true;
      return 0;
    }
    case AMDKFD_IOC_ALLOC_MEMORY_OF_GPU: {
      stats_.ioctl_log.push_back("ALLOC_MEMORY_OF_GPU");
      auto* a = static_cast<kfd_ioctl_alloc_memory_of_gpu_args*>(arg);
      if (!vm_acquired_ || a->gpu_id != kTestGpuId) return -EINVAL;
      uint32_t type = a->flags & kTypeMask;
      if (type != KFD_IOC_ALLOC_MEM_FLAGS_VRAM && type != KFD_IOC_ALLOC_MEM_FLAGS_GTT && type != KFD_IOC_ALLOC_MEM_FLAGS_USERPTR) return -EINVAL;
      if (a->size == 0 || a->size % kPage || a->va_addr % kPage) return -EINVAL;
      if (a->size > (uint64_t{16} << 30)) return -ENOMEM;
      // The range must be reserved address space and must not overlap a live allocation.
      auto r = reservations_.upper_bound(a->va_addr);
      if (r == reservations_.begin() || (--r, a->va_addr + a->size > r->first + r->second)) return -EINVAL;
      auto next = allocations_.lower_bound(a->va_addr);
      if (next != allocations_.end() && next->first < a->va_addr + a->size) return -EINVAL;
      if (next != allocations_.begin() && (--next, next->second.va + next->second.size > a->va_addr)) return -EINVAL;
      if (type == KFD_IOC_ALLOC_MEM_FLAGS_USERPTR && a->mmap_offset != a->va_addr) return -EINVAL;
      Allocation al{a->va_addr, a->size, next_handle_++, a->flags};
      allocations_[al.va] = al;
      a->handle = al.handle;
      if (type != KFD_IOC_ALLOC_MEM_FLAGS_USERPTR) a->mmap_offset = al.handle << 12;
      ++stats_.allocations_live;
      return 0;
    }
    case AMDKFD_IOC_FREE_MEMORY_OF_GPU: {
      stats_.ioctl_log.push_back("FREE_MEMORY_OF_GPU");
      Allocation* al = find_handle(static_cast<kfd_ioctl_free_memory_of_gpu_args*>(arg)->handle);
      if (!al) return -EINVAL;
      if (al->gpu_mapped) return -EBUSY;  // unmap from every GPU first
      allocations_.erase(al->va);
      --stats_.allocations_live;
      return 0;
    }
    case AMDKFD_IOC_MAP_MEMORY_TO_GPU:
    case AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU: {
      bool map = request == AMDKFD_IOC_MAP_MEMORY_TO_GPU;
      stats_.ioctl_log.push_back(map ? "MAP_MEMORY_TO_GPU" : "UNMAP_MEMORY_FROM_GPU");
      auto* a = static_cast<kfd_ioctl_map_memory_to_gpu_args*>(arg);
      Allocation* al = find_handle(a->handle);
      if (!al || a->n_devices == 0 || a->n_success > a->n_devices || !a->device_ids_array_ptr) return -EINVAL;
      for (uint32_t i = a->n_success; i < a->n_devices; ++i)
        if (reinterpret_cast<const uint32_t*>(a->device_ids_array_ptr)[i] != kTestGpuId) return -EINVAL;
      if (al->gpu_mapped == map) return -EINVAL;
      al->gpu_mapped = map;
      a->n_success = a->n_devices;
      return 0;
    }
    case AMDKFD_IOC_CREATE_QUEUE: {
      stats_.ioctl_log.push_back("CREATE_QUEUE");
      auto* a = static_cast<kfd_ioctl_create_queue_args*>(arg);
      if (!vm_acquired_ || a->gpu_id != kTestGpuId) return -EINVAL;
      if (a->queue_type != KFD_IOC_QUEUE_TYPE_COMPUTE_AQL) return -EOPNOTSUPP;  // the only kind this driver services
      if (a->ring_size < KFD_MIN_QUEUE_RING_SIZE || (a->ring_size & (a->ring_size - 1))) return -EINVAL;
      if (a->queue_percentage > KFD_MAX_QUEUE_PERCENTAGE || a->queue_priority > KFD_MAX_QUEUE_PRIORITY) return -EINVAL;
      if (!gpu_range(a->ring_base_address, a->ring_size)) return -EFAULT;
      if (a->write_pointer_address % 8 || a->read_pointer_address % 8 || !gpu_range(a->write_pointer_address, 8) ||
          !gpu_range(a->read_pointer_address, 8))
        return -EFAULT;
      if (a->eop_buffer_size && !gpu_range(a->eop_buffer_address, a->eop_buffer_size)) return -EFAULT;
      if (a->ctx_save_restore_size && (!gpu_range(a->ctx_save_restore_address, a->ctx_save_restore_size) ||
                                       a->ctl_stack_size >= a->ctx_save_restore_size))
        return -EINVAL;
      Queue q{static_cast<uint32_t>(queues_.size() + 1), a->ring_base_address, a->ring_size, a->write_pointer_address,
              a->read_pointer_address, nullptr};
      void* page = ::mmap(nullptr, kDoorbellPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      doorbell_pages_.push_back(page);
      q.doorbell = static_cast<uint64_t*>(page);
      *q.doorbell = ~uint64_t{0};  // nothing rung yet
      a->queue_id = q.id;
      a->doorbell_offset = kDoorbellBase + uint64_t{q.id} * kDoorbellPage;
      queues_.push_back(q);
      return 0;
    }
    case AMDKFD_IOC_DESTROY_QUEUE: {
      stats_.ioctl_log.push_back("DESTROY_QUEUE");
      uint32_t id = static_cast<kfd_ioctl_destroy_queue_args*>(arg)->queue_id;
      auto n = std::erase_if(queues_, [&](const Queue& q) { return q.id == id; });
      return n ? 0 : -EINVAL;
    }
    case AMDKFD_IOC_CREATE_EVENT: {
      stats_.ioctl_log.push_back("CREATE_EVENT");
      auto* a = static_cast<kfd_ioctl_create_event_args*>(arg);
      if (a->event_type != KFD_IOC_EVENT_SIGNAL) return -EINVAL;
      if (!events_page_) {
        // The first signal event names the page its mailboxes live in.
        Allocation* page = find_handle(a->event_page_offset);
        if (!page || page->size < KFD_SIGNAL_EVENT_LIMIT * 8) return -EINVAL;
        events_page_ = page->va;
      }
      uint32_t id = static_cast<uint32_t>(events_.size() + 1);
      if (id >= KFD_SIGNAL_EVENT_LIMIT) return -ENOSPC;
      events_[id] = id;
      a->event_id = id;
      a->event_slot_index = id;
      a->event_trigger_data = id;
      return 0;
    }
    case AMDKFD_IOC_DESTROY_EVENT: {
      stats_.ioctl_log.push_back("DESTROY_EVENT");
      return events_.erase(static_cast<kfd_ioctl_destroy_event_args*>(arg)->event_id) ? 0 : -EINVAL;
    }
    case AMDKFD_IOC_WAIT_EVENTS: {
      auto* a = static_cast<kfd_ioctl_wait_events_args*>(arg);
      auto* data = reinterpret_cast<kfd_event_data*>(a->events_ptr);
      if (!data || a->num_events == 0) return -EINVAL;
      for (uint32_t i = 0; i < a->num_events; ++i)
        if (!events_.count(data[i].event_id)) return -EINVAL;
      std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
      auto ready = [&] {
        uint32_t hits = 0;
        for (uint32_t i = 0; i < a->num_events; ++i) hits += signaled_[data[i].event_id];
        return !fault_.empty() || (a->wait_for_all ? hits == a->num_events : hits > 0);
      };
      bool ok = events_cv_.wait_for(lock, std::chrono::milliseconds(a->timeout), ready);
      lock.release();  // the caller's lock_guard unlocks
      if (!fault_.empty()) return -EIO;
      a->wait_result = ok ? KFD_IOC_WAIT_RESULT_COMPLETE : KFD_IOC_WAIT_RESULT_TIMEOUT;
      for (uint32_t i = 0; i < a->num_events; ++i) signaled_[data[i].event_id] = false;  // auto-reset
      return 0;
    }
    default:
      stats_.ioctl_log.push_back("unknown");
      return -EINVAL;
  }
}

void TestDriver::register_twin(const CodeObject& code, const std::string& kernel, int pointer_args, Twin twin) {
  const KernelInfo& k = code.kernel(kernel);
  TwinEntry e;
  const uint8_t* image = code.image.data();
  e.descriptor.assign(image + k.descriptor_offset, image + k.descriptor_offset + 64);
  e.code.assign(image + k.entry_offset, image + k.entry_offset + k.code_size);
  e.pointer_args = pointer_args;
  e.twin = std::move(twin);
  std::lock_guard<std::mutex> lock(mu_);
  twins_.emplace(fnv1a(e.descriptor.data(), 64), std::move(e));
}

void TestDriver::fail(const std::string& what) {
  if (fault_.empty()) fault_ = "test driver: " + what;
  events_cv_.notify_all();
}

std::string TestDriver::fault() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fault_;
}

TestDriver::Stats TestDriver::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void TestDriver::signal_event(uint32_t id) {
  signaled_[id] = true;
  events_cv_.notify_all();
}

void TestDriver::service() {
  while (!stop_) {
    bool busy = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (auto& q : queues_)
        while (fault_.empty() && process(q)) busy = true;
    }
    if (!busy) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

bool TestDriver::segments_ok(const KernelDispatchPacket& p, const KernelDescriptor& kd) {
  if (kd.kernarg_size > 0 && (p.kernarg_address % 16 || !gpu_range(p.kernarg_address, kd.kernarg_size)))
    return fail("kernarg segment outside GPU memory or misaligned"), false;
  if (kd.group_segment_fixed_size > p.group_segment_size) return fail("group segment smaller than the kernel needs"), false;
  return true;
}

// Finds the twin registered for the descriptor and code at kernel_object and runs it on the
// buffer addresses read from the kernarg segment.
bool TestDriver::execute(const KernelDispatchPacket& p, uint64_t, const KernelDescriptor& kd) {
  uint64_t entry = p.kernel_object + static_cast<uint64_t>(kd.kernel_code_entry_byte_offset);
  const TwinEntry* twin = nullptr;
  auto [lo, hi] = twins_.equal_range(fnv1a(reinterpret_cast<const uint8_t*>(p.kernel_object), 64));
  for (auto it = lo; it != hi && !twin; ++it)
    if (std::memcmp(it->second.descriptor.data(), reinterpret_cast<const void*>(p.kernel_object), 64) == 0 &&
        gpu_range(entry, it->second.code.size()) &&
        std::memcmp(it->second.code.data(), reinterpret_cast<const void*>(entry), it->second.code.size()) == 0)
      twin = &it->second;
  if (!twin) return fail("no kernel is registered for the descriptor and code at kernel_object (was the code object placed and relocated right?)"), false;
  if (!segments_ok(p, kd)) return false;
  std::vector<void*> args;
  for (int i = 0; i < twin->pointer_args; ++i) {
    uint64_t va = load<uint64_t>(p.kernarg_address + 8 * uint64_t(i));
    if (!gpu_range(va, 1)) return fail("kernel argument " + std::to_string(i) + " is not a GPU address"), false;
    args.push_back(reinterpret_cast<void*>(va));
  }
  uint64_t grid = uint64_t{p.grid_size_x} * p.grid_size_y * p.grid_size_z;
  twin->twin(args, reinterpret_cast<const uint8_t*>(p.kernarg_address), grid);
  return true;
}

// Handles the packet at the queue's read index if the doorbell covers it; false when idle.
bool TestDriver::process(Queue& q) {
  uint64_t rung = std::atomic_ref<uint64_t>(*q.doorbell).load(std::memory_order_acquire);
  if (rung == ~uint64_t{0} || q.read_index > rung) return false;
  const uint64_t packets = q.ring_size / 64;
  uint64_t slot = q.ring + (q.read_index % packets) * 64;
  uint16_t header = std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(slot)).load(std::memory_order_acquire);
  auto type = static_cast<PacketType>(header & 0xff);
  if (type == PacketType::Invalid) return false;  // rung before the header was published: wait
  uint64_t completion = 0;
  if (type == PacketType::KernelDispatch) {
    auto p = load<KernelDispatchPacket>(slot);
    uint32_t dims = p.setup & 3;
    uint64_t group = uint64_t{p.workgroup_size_x} * p.workgroup_size_y * p.workgroup_size_z;
    uint64_t grid = uint64_t{p.grid_size_x} * p.grid_size_y * p.grid_size_z;
    if (dims < 1 || dims > 3 || group == 0 || group > 1024 || grid == 0) return fail("dispatch packet with a bad grid or group size"), false;
    if (((header >> kHeaderAcquireShift) & 3) == 3 || ((header >> kHeaderReleaseShift) & 3) == 3) return fail("reserved fence scope"), false;
    const Allocation* code = gpu_range(p.kernel_object, 64);
    if (p.kernel_object % 64 || !code || !(code->flags & KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE))
      return fail("kernel_object " + std::to_string(p.kernel_object) + " is not a kernel descriptor in executable GPU memory"), false;
    auto kd = load<KernelDescriptor>(p.kernel_object);
    if (!execute(p, slot, kd)) return false;
    completion = p.completion_signal;
    ++stats_.dispatches;
  } else if (type == PacketType::BarrierAnd) {
    auto p = load<BarrierAndPacket>(slot);
    for (uint64_t s : p.dep_signal)
      if (s && (!gpu_range(s, 64) || std::atomic_ref<int64_t>(*reinterpret_cast<int64_t*>(s + 8)).load() > 0)) return false;  // not yet
    completion = p.completion_signal;
    ++stats_.barriers;
  } else {
    return fail("unsupported packet type " + std::to_string(header & 0xff)), false;
  }
  if (completion) {
    if (!gpu_range(completion, 64)) return fail("completion signal outside GPU memory"), false;
    auto* sig = reinterpret_cast<AmdSignal*>(completion);
    std::atomic_ref<int64_t>(sig->value).fetch_sub(1, std::memory_order_acq_rel);
    if (sig->event_mailbox_ptr) {
      if (!gpu_range(sig->event_mailbox_ptr, 8)) return fail("event mailbox outside GPU memory"), false;
      *reinterpret_cast<uint64_t*>(sig->event_mailbox_ptr) = sig->event_id;
      signal_event(sig->event_id);
    }
  }
  // The packet processor hands the slot back by making it INVALID, then moves the read index.
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(slot)).store(static_cast<uint16_t>(PacketType::Invalid), std::memory_order_release);
  ++q.read_index;
  std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(q.rptr)).store(q.read_index, std::memory_order_release);
  return true;
}

}  // namespace lathe::amd
