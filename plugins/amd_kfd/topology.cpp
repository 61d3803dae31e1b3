#include "topology.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "lathe/error.h"

namespace lathe::amd {
namespace {

namespace fs = std::filesystem;

std::map<std::string, uint64_t> read_properties(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error("amd_kfd: cannot read " + file.string());
  std::map<std::string, uint64_t> props;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::istringstream words(line);
    std::string key, value;
    words >> key >> value;
    try {
      size_t used = 0;
      props[key] = std::stoull(value, &used);
      if (used != value.size()) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      throw Error("amd_kfd: " + file.string() + ":" + std::to_string(number) + ": expected \"key number\", got \"" + line + "\"");
    }
  }
  return props;
}

uint64_t get(const std::map<std::string, uint64_t>& props, const std::string& key, uint64_t fallback = 0) {
  auto it = props.find(key);
  return it == props.end() ? fallback : it->second;
}

}  // namespace

std::string target_name(uint32_t v) {
  const char* hex = "0123456789abcdef";
  uint32_t major = v / 10000, minor = v / 100 % 100, stepping = v % 100;
  return "gfx" + std::to_string(major) + hex[minor % 16] + hex[stepping % 16];
}

std::vector<GpuNode> read_topology(const std::string& root) {
  std::vector<GpuNode> gpus;
  if (!fs::is_directory(root)) return gpus;
  std::vector<fs::path> nodes;
  for (auto& entry : fs::directory_iterator(root))
    if (entry.is_directory()) nodes.push_back(entry.path());
  std::sort(nodes.begin(), nodes.end(), [](const fs::path& a, const fs::path& b) {
    return std::stoi(a.filename().string()) < std::stoi(b.filename().string());
  });
  for (const fs::path& dir : nodes) {
    uint32_t gpu_id = 0;
    std::ifstream id(dir / "gpu_id");
    if (!(id >> gpu_id) || gpu_id == 0) continue;  // a CPU node
    GpuNode g;
    g.node = std::stoi(dir.filename().string());
    g.gpu_id = gpu_id;
    g.properties = read_properties(dir / "properties");
    const auto& p = g.properties;
    g.gfx_target_version = static_cast<uint32_t>(get(p, "gfx_target_version"));
    if (g.gfx_target_version == 0)
      throw Error("amd_kfd: " + (dir / "properties").string() + " has no gfx_target_version");
    g.target = target_name(g.gfx_target_version);
    g.simd_per_cu = static_cast<int>(get(p, "simd_per_cu", 4));
    g.compute_units = static_cast<int>(get(p, "simd_count") / std::max(1, g.simd_per_cu));
    g.wave_front_size = static_cast<int>(get(p, "wave_front_size", 64));
    g.lds_size_kb = static_cast<int>(get(p, "lds_size_in_kb", 64));
    g.drm_render_minor = static_cast<int>(get(p, "drm_render_minor", static_cast<uint64_t>(-1)));
    g.num_xcc = static_cast<int>(std::max<uint64_t>(1, get(p, "num_xcc", 1)));
    g.max_engine_clk_mhz = static_cast<uint32_t>(get(p, "max_engine_clk_fcompute"));
    g.vendor_id = static_cast<uint32_t>(get(p, "vendor_id"));
    g.device_id = static_cast<uint32_t>(get(p, "device_id"));
    g.ctl_stack_size = static_cast<uint32_t>(get(p, "ctl_stack_size"));
    g.cwsr_size = static_cast<uint32_t>(get(p, "cwsr_size"));
    g.eop_buffer_size = static_cast<uint32_t>(get(p, "eop_buffer_size"));
    fs::path banks = dir / "mem_banks";
    if (fs::is_directory(banks)) {
      std::vector<fs::path> dirs;
      for (auto& entry : fs::directory_iterator(banks)) dirs.push_back(entry.path());
      std::sort(dirs.begin(), dirs.end());
      for (const fs::path& b : dirs) {
        auto bp = read_properties(b / "properties");
        MemoryBank bank{static_cast<int>(get(bp, "heap_type")), get(bp, "size_in_bytes")};
        if (bank.heap_type == 1 || bank.heap_type == 2) g.vram_bytes += bank.size_bytes;
        g.banks.push_back(bank);
      }
    }
    gpus.push_back(std::move(g));
  }
  return gpus;
}

}  // namespace lathe::amd
