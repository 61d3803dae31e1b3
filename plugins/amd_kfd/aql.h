// The HSA Architected Queuing Language as the AMD command processor reads it: 64-byte packets
// in a ring, signals the packet processor decrements, and the amd_queue_t descriptor whose
// read/write dispatch ids the KFD points the hardware queue at. Layouts follow the HSA
// Platform System Architecture specification (packets, header bits) and ROCr's
// amd_hsa_queue.h / amd_hsa_signal.h (the AMD-specific structures); every offset is checked below.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lathe::amd {

// Header: type in bits 0-7, barrier bit 8, acquire fence scope bits 9-10, release 11-12.
enum class PacketType : uint16_t { VendorSpecific = 0, Invalid = 1, KernelDispatch = 2, BarrierAnd = 3, AgentDispatch = 4, BarrierOr = 5 };
enum class FenceScope : uint16_t { None = 0, Agent = 1, System = 2 };
constexpr int kHeaderBarrierBit = 8, kHeaderAcquireShift = 9, kHeaderReleaseShift = 11;

constexpr uint16_t packet_header(PacketType type, bool barrier, FenceScope acquire, FenceScope release) {
  return static_cast<uint16_t>(static_cast<uint16_t>(type) | (barrier ? 1u << kHeaderBarrierBit : 0u) |
                               static_cast<uint16_t>(acquire) << kHeaderAcquireShift |
                               static_cast<uint16_t>(release) << kHeaderReleaseShift);
}

struct KernelDispatchPacket {
  uint16_t header;
  uint16_t setup;  // bits 0-1: dimensions
  uint16_t workgroup_size_x, workgroup_size_y, workgroup_size_z;
  uint16_t reserved0;
  uint32_t grid_size_x, grid_size_y, grid_size_z;  // in work-items
  uint32_t private_segment_size;                  // bytes per work-item
  uint32_t group_segment_size;                    // bytes per work-group (LDS)
  uint64_t kernel_object;                          // GPU address of the kernel descriptor
  uint64_t kernarg_address;
  uint64_t reserved2;
  uint64_t completion_signal;                      // GPU address of an AmdSignal, or 0
};

struct BarrierAndPacket {
  uint16_t header;
  uint16_t reserved0;
  uint32_t reserved1;
  uint64_t dep_signal[5];
  uint64_t reserved2;
  uint64_t completion_signal;
};

// The memory behind an hsa_signal_t: the packet processor decrements `value` when the packet
// completes and, when `event_mailbox_ptr` is set, writes `event_id` there and interrupts, which
// wakes a KFD WAIT_EVENTS on that event.
struct AmdSignal {
  int64_t kind;  // 1: user signal
  int64_t value;
  uint64_t event_mailbox_ptr;
  uint32_t event_id;
  uint32_t reserved1;
  uint64_t start_ts, end_ts;  // filled when the queue has profiling enabled
  uint64_t reserved2;
  uint32_t reserved3[2];
};
constexpr int64_t kSignalKindUser = 1;

// amd_queue_t: the hardware reads write_dispatch_id / read_dispatch_id through the pointers
// given to CREATE_QUEUE; the rest matters to trap handlers and scratch setup.
struct AmdQueue {
  uint32_t hsa_type, hsa_features;
  uint64_t hsa_base_address, hsa_doorbell_signal;
  uint32_t hsa_size, hsa_reserved1;
  uint64_t hsa_id;
  uint32_t reserved1[4];
  uint64_t write_dispatch_id;
  uint32_t group_segment_aperture_base_hi, private_segment_aperture_base_hi;
  uint32_t max_cu_id, max_wave_id;
  uint64_t max_legacy_doorbell_dispatch_id_plus_1;
  uint32_t legacy_doorbell_lock;
  uint32_t reserved2[9];
  uint64_t read_dispatch_id;
  uint32_t read_dispatch_id_field_base_byte_offset;
  uint32_t compute_tmpring_size;
  uint32_t scratch_resource_descriptor[4];
  uint64_t scratch_backing_memory_location, scratch_backing_memory_byte_size;
  uint32_t scratch_workitem_byte_size;
  uint32_t queue_properties;  // bit 1: pointers are 64-bit; bit 3: profiling (timestamps in signals)
  uint32_t reserved3[2];
  uint64_t queue_inactive_signal;
  uint32_t reserved4[14];
};
constexpr uint32_t kQueuePropertyIsPtr64 = 1u << 1, kQueuePropertyProfiling = 1u << 3;

static_assert(sizeof(KernelDispatchPacket) == 64 && offsetof(KernelDispatchPacket, grid_size_x) == 12 &&
              offsetof(KernelDispatchPacket, private_segment_size) == 24 && offsetof(KernelDispatchPacket, kernel_object) == 32 &&
              offsetof(KernelDispatchPacket, kernarg_address) == 40 && offsetof(KernelDispatchPacket, completion_signal) == 56);
static_assert(sizeof(BarrierAndPacket) == 64 && offsetof(BarrierAndPacket, dep_signal) == 8 &&
              offsetof(BarrierAndPacket, completion_signal) == 56);
static_assert(sizeof(AmdSignal) == 64 && offsetof(AmdSignal, value) == 8 && offsetof(AmdSignal, event_mailbox_ptr) == 16 &&
              offsetof(AmdSignal, event_id) == 24 && offsetof(AmdSignal, start_ts) == 32);
static_assert(sizeof(AmdQueue) == 256 && offsetof(AmdQueue, write_dispatch_id) == 56 && offsetof(AmdQueue, max_cu_id) == 72 &&
              offsetof(AmdQueue, read_dispatch_id) == 128 && offsetof(AmdQueue, queue_properties) == 180);

// A dispatch of a 1-D grid of `work_items` in groups of `group_size`. The header is returned
// separately: it must be written last, atomically, once the rest of the packet is in the ring.
struct Dispatch {
  KernelDispatchPacket body;
  uint16_t header;
};
Dispatch make_dispatch(uint64_t kernel_object, uint64_t kernarg_address, uint32_t work_items, uint16_t group_size,
                       uint32_t group_segment_bytes, uint32_t private_segment_bytes, uint64_t completion_signal);
// A barrier-AND on up to five signals (0 for unused slots).
BarrierAndPacket make_barrier_and(const uint64_t* signals, int count, uint64_t completion_signal, uint16_t* header);

// Publishes a packet: everything but the first 32 bits first, then header and setup in one
// release store, so the packet processor never sees a half-written packet.
void publish(void* slot, const void* packet, uint16_t header, uint16_t setup);

}  // namespace lathe::amd
