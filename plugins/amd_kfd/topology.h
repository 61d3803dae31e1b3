// The KFD topology: what the amdgpu driver publishes about each node under
// /sys/devices/virtual/kfd/kfd/topology/nodes/<n>/ (a `gpu_id` file, a `properties` file of
// "key value" lines, and mem_banks/<m>/properties). CPU nodes have gpu_id 0.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lathe::amd {

struct MemoryBank {
  int heap_type = 0;  // 0 system, 1 frame buffer (host-visible), 2 frame buffer (private)
  uint64_t size_bytes = 0;
};

struct GpuNode {
  int node = -1;          // index under nodes/
  uint32_t gpu_id = 0;    // the id every KFD ioctl names the GPU by
  uint32_t gfx_target_version = 0;  // major*10000 + minor*100 + stepping, e.g. 90402
  std::string target;     // gfx942
  int compute_units = 0;
  int simd_per_cu = 0;
  int wave_front_size = 64;
  int lds_size_kb = 0;
  int drm_render_minor = -1;
  int num_xcc = 1;
  uint32_t max_engine_clk_mhz = 0;
  uint32_t vendor_id = 0, device_id = 0;
  uint32_t ctl_stack_size = 0, cwsr_size = 0, eop_buffer_size = 0;  // when the driver publishes them
  uint64_t vram_bytes = 0;
  std::vector<MemoryBank> banks;
  std::map<std::string, uint64_t> properties;  // everything, for messages
};

// "gfx" + major (decimal) + minor and stepping (hex digits): 90010 -> gfx90a, 110000 -> gfx1100.
std::string target_name(uint32_t gfx_target_version);

// Reads every GPU node under `root` (normally /sys/devices/virtual/kfd/kfd/topology/nodes).
// Throws with the file and line when a properties file is malformed.
std::vector<GpuNode> read_topology(const std::string& root);

}  // namespace lathe::amd
