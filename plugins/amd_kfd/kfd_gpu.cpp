#include "kfd_gpu.h"

#include <fcntl.h>
#include <linux/kfd_ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <libdrm/amdgpu_drm.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "lathe/error.h"

namespace lathe::amd {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kRingBytes = 256 * 1024;  // 4096 packets
constexpr size_t kDoorbellPage = 8192;
size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Context save/restore area for compute-wave save and restore. The driver publishes the sizes
// on recent kernels; otherwise they are estimated from the shape of the GPU (an estimate
// that only real hardware can confirm).
void cwsr_sizes(const GpuNode& n, uint32_t& ctl_stack, uint32_t& total) {
  if (n.cwsr_size && n.ctl_stack_size) {
    ctl_stack = n.ctl_stack_size;
    total = n.cwsr_size;
    return;
  }
  const bool gfx9 = n.gfx_target_version / 10000 == 9;
  const uint32_t waves = static_cast<uint32_t>(n.compute_units / n.num_xcc) * 32;
  ctl_stack = static_cast<uint32_t>(round_up((gfx9 ? 8 : 12) * waves + 8 + 40, kPage));
  const uint32_t vgprs = gfx9 && n.gfx_target_version >= 90010 ? 0x80000 : 0x40000;  // AGPRs double the file on gfx90a+
  const uint32_t per_cu = vgprs + 0x4000 /* sgprs */ + static_cast<uint32_t>(n.lds_size_kb) * 1024 + 0x1000 /* hwregs */;
  total = static_cast<uint32_t>(round_up(per_cu * static_cast<uint32_t>(n.compute_units / n.num_xcc) + ctl_stack, kPage));
}

}  // namespace

int KfdGpu::ioctl(int fd, unsigned long request, void* arg, const char* what) {
  int r = d_.ioctl(fd, request, arg);
  if (r < 0) {
    std::string fault = d_.fault();
    throw Error(std::string("amd_kfd: ") + what + " failed on " + node_.target + " (gpu_id " + std::to_string(node_.gpu_id) + ", " +
                d_.name() + "): " + std::strerror(-r) + (fault.empty() ? "" : "; " + fault));
  }
  return r;
}

KfdGpu::KfdGpu(Driver& driver, const GpuNode& node) : d_(driver), node_(node) {
  kfd_ = d_.open("/dev/kfd", O_RDWR);
  if (kfd_ < 0) throw Error("amd_kfd: cannot open /dev/kfd: " + std::string(std::strerror(-kfd_)) + " (is your user in the render group?)");
  kfd_ioctl_get_version_args version{};
  ioctl(kfd_, AMDKFD_IOC_GET_VERSION, &version, "GET_VERSION");
  if (version.major_version != KFD_IOCTL_MAJOR_VERSION)
    throw Error("amd_kfd: the kernel's KFD interface is version " + std::to_string(version.major_version) + "." +
                std::to_string(version.minor_version) + "; this build speaks " + std::to_string(KFD_IOCTL_MAJOR_VERSION) + ".x");
  std::string render = "/dev/dri/renderD" + std::to_string(node_.drm_render_minor);
  drm_ = d_.open(render, O_RDWR);
  if (drm_ < 0) throw Error("amd_kfd: cannot open " + render + ": " + std::strerror(-drm_));
  // The device as the amdgpu DRM interface describes it.
  drm_amdgpu_info_device dev{};
  drm_amdgpu_info_vram_gtt mem{};
  drm_amdgpu_info query{};
  query.return_pointer = reinterpret_cast<uint64_t>(&dev);
  query.return_size = sizeof dev;
  query.query = AMDGPU_INFO_DEV_INFO;
  ioctl(drm_, DRM_IOCTL_AMDGPU_INFO, &query, "DRM_IOCTL_AMDGPU_INFO(DEV_INFO)");
  query.return_pointer = reinterpret_cast<uint64_t>(&mem);
  query.return_size = sizeof mem;
  query.query = AMDGPU_INFO_VRAM_GTT;
  ioctl(drm_, DRM_IOCTL_AMDGPU_INFO, &query, "DRM_IOCTL_AMDGPU_INFO(VRAM_GTT)");
  vram_bytes_ = mem.vram_size ? mem.vram_size : node_.vram_bytes;
  char id[16];
  std::snprintf(id, sizeof id, "%04x", dev.device_id);
  description_ = "AMD " + node_.target + " [" + id + "] " + std::to_string(dev.cu_active_number ? dev.cu_active_number : node_.compute_units) +
                 " CUs, " + std::to_string(dev.max_engine_clock / 1000) + " MHz, " + std::to_string(vram_bytes_ >> 30) + " GiB (" + d_.name() + ")";

  kfd_ioctl_acquire_vm_args vm{static_cast<uint32_t>(drm_), node_.gpu_id};
  ioctl(kfd_, AMDKFD_IOC_ACQUIRE_VM, &vm, "ACQUIRE_VM");

  // Completion: one signal every dispatch decrements, backed by an auto-reset KFD event.
  events_page_ = alloc(KFD_SIGNAL_EVENT_LIMIT * 8, MemoryKind::Gtt, true);
  kfd_ioctl_create_event_args ev{};
  ev.event_page_offset = events_page_.handle;
  ev.event_type = KFD_IOC_EVENT_SIGNAL;
  ev.auto_reset = 1;
  ioctl(kfd_, AMDKFD_IOC_CREATE_EVENT, &ev, "CREATE_EVENT");
  event_id_ = ev.event_id;
  have_event_ = true;
  signal_mem_ = alloc(kPage, MemoryKind::Gtt, true);
  signal_ = static_cast<AmdSignal*>(signal_mem_.host);
  std::memset(signal_, 0, sizeof *signal_);
  signal_->kind = kSignalKindUser;
  signal_->event_mailbox_ptr = events_page_.va + uint64_t{ev.event_slot_index} * 8;
  signal_->event_id = ev.event_id;
  create_queue();
}

void KfdGpu::create_queue() {
  ring_ = alloc(kRingBytes, MemoryKind::Gtt, true);
  std::memset(ring_.host, 0, kRingBytes);
  // Every slot starts as an INVALID packet so the packet processor stops at the write index.
  ring_packets_ = static_cast<uint32_t>(kRingBytes / 64);
  for (uint32_t i = 0; i < ring_packets_; ++i)
    reinterpret_cast<uint16_t*>(static_cast<char*>(ring_.host) + i * 64)[0] = static_cast<uint16_t>(PacketType::Invalid);
  queue_desc_ = alloc(kPage, MemoryKind::Gtt, true);
  queue_ = static_cast<AmdQueue*>(queue_desc_.host);
  std::memset(queue_, 0, sizeof *queue_);
  queue_->hsa_base_address = ring_.va;
  queue_->hsa_size = ring_packets_;
  queue_->max_cu_id = static_cast<uint32_t>(node_.compute_units - 1);
  queue_->max_wave_id = 31;
  queue_->read_dispatch_id_field_base_byte_offset = offsetof(AmdQueue, read_dispatch_id);
  queue_->queue_properties = kQueuePropertyIsPtr64 | kQueuePropertyProfiling;
  eop_ = alloc(node_.eop_buffer_size ? node_.eop_buffer_size : kPage, MemoryKind::Vram, false);
  uint32_t ctl_stack = 0, cwsr = 0;
  cwsr_sizes(node_, ctl_stack, cwsr);
  cwsr_ = alloc(round_up(size_t{cwsr} * node_.num_xcc, kPage), MemoryKind::Gtt, false);

  kfd_ioctl_create_queue_args q{};
  q.ring_base_address = ring_.va;
  q.ring_size = static_cast<uint32_t>(kRingBytes);
  q.gpu_id = node_.gpu_id;
  q.queue_type = KFD_IOC_QUEUE_TYPE_COMPUTE_AQL;
  q.queue_percentage = KFD_MAX_QUEUE_PERCENTAGE;
  q.queue_priority = 7;
  q.write_pointer_address = queue_desc_.va + offsetof(AmdQueue, write_dispatch_id);
  q.read_pointer_address = queue_desc_.va + offsetof(AmdQueue, read_dispatch_id);
  q.eop_buffer_address = eop_.va;
  q.eop_buffer_size = eop_.size;
  q.ctx_save_restore_address = cwsr_.va;
  q.ctx_save_restore_size = cwsr;
  q.ctl_stack_size = ctl_stack;
  ioctl(kfd_, AMDKFD_IOC_CREATE_QUEUE, &q, "CREATE_QUEUE");
  queue_id_ = q.queue_id;
  have_queue_ = true;
  // The doorbell: a 64-bit register in a page the KFD maps at doorbell_offset.
  off_t page = static_cast<off_t>(q.doorbell_offset & ~uint64_t{kDoorbellPage - 1});
  doorbell_page_ = d_.mmap(nullptr, kDoorbellPage, PROT_READ | PROT_WRITE, MAP_SHARED, kfd_, page);
  if (doorbell_page_ == MAP_FAILED) throw Error("amd_kfd: mapping the queue's doorbell page failed");
  doorbell_ = reinterpret_cast<uint64_t*>(static_cast<char*>(doorbell_page_) + (q.doorbell_offset & (kDoorbellPage - 1)));
}

GpuMemory KfdGpu::alloc(size_t bytes, MemoryKind kind, bool host_visible, bool executable) {
  std::lock_guard<std::mutex> lock(memory_mu_);
  GpuMemory m;
  m.size = round_up(std::max<size_t>(bytes, 1), kPage);
  m.kind = kind;
  // Reserve the address range in the process first: the GPU uses the same address, so a
  // host-visible allocation appears at its GPU address.
  void* reserved = d_.mmap(nullptr, m.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) throw OutOfMemoryError("amd_kfd: no address space left for " + std::to_string(m.size) + " bytes");
  m.va = reinterpret_cast<uint64_t>(reserved);
  kfd_ioctl_alloc_memory_of_gpu_args a{};
  a.va_addr = m.va;
  a.size = m.size;
  a.gpu_id = node_.gpu_id;
  a.flags = KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE | KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE |
            (executable ? KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE : 0u);
  if (kind == MemoryKind::Vram) a.flags |= KFD_IOC_ALLOC_MEM_FLAGS_VRAM | (host_visible ? KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC : 0u);
  if (kind == MemoryKind::Gtt) a.flags |= KFD_IOC_ALLOC_MEM_FLAGS_GTT | KFD_IOC_ALLOC_MEM_FLAGS_COHERENT | KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED;
  if (kind == MemoryKind::Userptr) {
    // Ordinary process memory the GPU maps: make the reservation real memory first.
    d_.munmap(reserved, m.size);
    reserved = d_.mmap(reserved, m.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    a.flags |= KFD_IOC_ALLOC_MEM_FLAGS_USERPTR;
    a.mmap_offset = m.va;
  }
  int r = d_.ioctl(kfd_, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a);
  if (r < 0) {
    d_.munmap(reserved, m.size);
    if (r == -ENOMEM)
      throw OutOfMemoryError("amd_kfd: out of GPU memory allocating " + std::to_string(m.size >> 20) + " MiB on " + node_.target +
                             "; use a smaller batch or model");
    throw Error("amd_kfd: ALLOC_MEMORY_OF_GPU of " + std::to_string(m.size) + " bytes failed: " + std::strerror(-r));
  }
  m.handle = a.handle;
  uint32_t gpu = node_.gpu_id;
  kfd_ioctl_map_memory_to_gpu_args map{m.handle, reinterpret_cast<uint64_t>(&gpu), 1, 0};
  ioctl(kfd_, AMDKFD_IOC_MAP_MEMORY_TO_GPU, &map, "MAP_MEMORY_TO_GPU");
  if (kind == MemoryKind::Userptr) m.host = reserved;
  else if (host_visible) {
    void* p = d_.mmap(reserved, m.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, drm_, static_cast<off_t>(a.mmap_offset));
    if (p == MAP_FAILED) throw Error("amd_kfd: mapping " + std::to_string(m.size) + " bytes of GPU memory into the process failed");
    m.host = p;
  }
  owned_.push_back(m);
  return m;
}

void KfdGpu::free(const GpuMemory& m) {
  std::lock_guard<std::mutex> lock(memory_mu_);
  uint32_t gpu = node_.gpu_id;
  kfd_ioctl_unmap_memory_from_gpu_args unmap{m.handle, reinterpret_cast<uint64_t>(&gpu), 1, 0};
  ioctl(kfd_, AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU, &unmap, "UNMAP_MEMORY_FROM_GPU");
  kfd_ioctl_free_memory_of_gpu_args f{m.handle};
  ioctl(kfd_, AMDKFD_IOC_FREE_MEMORY_OF_GPU, &f, "FREE_MEMORY_OF_GPU");
  d_.munmap(reinterpret_cast<void*>(m.va), m.size);
  std::erase_if(owned_, [&](const GpuMemory& o) { return o.handle == m.handle; });
}

void KfdGpu::dispatch(uint64_t kernel_object, uint64_t kernarg_va, uint32_t work_items, uint16_t group_size,
                      uint32_t group_segment_bytes, uint32_t private_segment_bytes) {
  // A full ring waits for the packet processor to move on.
  while (write_index_ - std::atomic_ref<uint64_t>(queue_->read_dispatch_id).load(std::memory_order_acquire) >= ring_packets_)
    std::this_thread::yield();
  Dispatch d = make_dispatch(kernel_object, kernarg_va, work_items, group_size, group_segment_bytes, private_segment_bytes,
                             signal_mem_.va);
  std::atomic_ref<int64_t>(signal_->value).fetch_add(1, std::memory_order_acq_rel);
  void* slot = static_cast<char*>(ring_.host) + (write_index_ % ring_packets_) * 64;
  publish(slot, &d.body, d.header, d.body.setup);
  std::atomic_ref<uint64_t>(queue_->write_dispatch_id).store(write_index_ + 1, std::memory_order_release);
  // Ring the doorbell with the index of the packet just written.
  std::atomic_ref<uint64_t>(*doorbell_).store(write_index_, std::memory_order_release);
  ++write_index_;
}

void KfdGpu::wait_idle() {
  auto start = std::chrono::steady_clock::now();
  auto done = [&] { return std::atomic_ref<int64_t>(signal_->value).load(std::memory_order_acquire) <= 0; };
  for (int spin = 0; spin < 20000 && !done(); ++spin) std::this_thread::yield();
  while (!done()) {
    kfd_event_data data{};
    data.event_id = event_id_;
    kfd_ioctl_wait_events_args w{reinterpret_cast<uint64_t>(&data), 1, 1, 100, 0};
    ioctl(kfd_, AMDKFD_IOC_WAIT_EVENTS, &w, "WAIT_EVENTS");
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(120))
      throw Error("amd_kfd: the GPU did not finish its work within 120 s (" + std::to_string(signal_->value) +
                  " dispatches outstanding); the queue may be hung");
  }
}

KfdGpu::~KfdGpu() {
  try {
    if (have_queue_) {
      if (signal_) wait_idle();
      kfd_ioctl_destroy_queue_args q{queue_id_, 0};
      d_.ioctl(kfd_, AMDKFD_IOC_DESTROY_QUEUE, &q);
      if (doorbell_page_) d_.munmap(doorbell_page_, kDoorbellPage);
    }
    if (have_event_) {
      kfd_ioctl_destroy_event_args e{event_id_, 0};
      d_.ioctl(kfd_, AMDKFD_IOC_DESTROY_EVENT, &e);
    }
    while (!owned_.empty()) free(owned_.back());
  } catch (...) {
  }
  if (drm_ >= 0) d_.close(drm_);
  if (kfd_ >= 0) d_.close(kfd_);
}

}  // namespace lathe::amd
