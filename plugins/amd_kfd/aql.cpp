#include "aql.h"

#include <atomic>
#include <cstring>

#include "lathe/error.h"

namespace lathe::amd {

Dispatch make_dispatch(uint64_t kernel_object, uint64_t kernarg_address, uint32_t work_items, uint16_t group_size,
                       uint32_t group_segment_bytes, uint32_t private_segment_bytes, uint64_t completion_signal) {
  check(group_size > 0 && work_items % group_size == 0,
        "amd_kfd: a grid of " + std::to_string(work_items) + " work-items is not a whole number of groups of " + std::to_string(group_size));
  Dispatch d{};
  d.body.setup = 1;  // one dimension
  d.body.workgroup_size_x = group_size;
  d.body.workgroup_size_y = d.body.workgroup_size_z = 1;
  d.body.grid_size_x = work_items;
  d.body.grid_size_y = d.body.grid_size_z = 1;
  d.body.private_segment_size = private_segment_bytes;
  d.body.group_segment_size = group_segment_bytes;
  d.body.kernel_object = kernel_object;
  d.body.kernarg_address = kernarg_address;
  d.body.completion_signal = completion_signal;
  // Barrier bit: launches run in order. System-scope fences: results are visible to the host
  // (and host writes to kernargs and buffers to the kernel) without further flushes.
  d.header = packet_header(PacketType::KernelDispatch, true, FenceScope::System, FenceScope::System);
  return d;
}

BarrierAndPacket make_barrier_and(const uint64_t* signals, int count, uint64_t completion_signal, uint16_t* header) {
  check(count >= 0 && count <= 5, "amd_kfd: a barrier-AND packet waits on at most five signals");
  BarrierAndPacket p{};
  for (int i = 0; i < count; ++i) p.dep_signal[i] = signals[i];
  p.completion_signal = completion_signal;
  *header = packet_header(PacketType::BarrierAnd, true, FenceScope::System, FenceScope::System);
  return p;
}

void publish(void* slot, const void* packet, uint16_t header, uint16_t setup) {
  auto* dst = static_cast<unsigned char*>(slot);
  std::memcpy(dst + 4, static_cast<const unsigned char*>(packet) + 4, 60);
  uint32_t first = static_cast<uint32_t>(header) | static_cast<uint32_t>(setup) << 16;
  std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(dst)).store(first, std::memory_order_release);
}

}  // namespace lathe::amd
