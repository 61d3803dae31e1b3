// Test support for the AMD emulator: a kernel body in AMDGPU assembly, assembled with clang and
// linked with lld into a real code object, dispatched through KfdGpu on the emulator driver
// with three input rows (v1, v2, v3: 64 words each) and one output row (v4, or what it stores).
#pragma once
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "code_object.h"
#include "emulator_driver.h"
#include "kfd_gpu.h"
#include "topology.h"

namespace lathe::amd::asm_test {

struct AsmKernel {
  std::string body;                 // runs after v1..v3 are loaded; the result goes in v4
  std::string directives;           // extra .amdhsa_* lines (denormal mode, LDS size, ...)
  uint32_t work_items = 64, group = 64, lds_bytes = 0;
  bool prelude = true;              // load the inputs and store v4 around the body
};

inline std::string assembly(const AsmKernel& k) {
  std::string s = ".amdgcn_target \"amdgcn-amd-amdhsa--gfx942\"\n.text\n.globl k\n.p2align 8\n.type k,@function\nk:\n";
  if (k.prelude)
    s += "  s_load_dwordx4 s[4:7], s[0:1], 0x0\n  s_waitcnt lgkmcnt(0)\n  v_lshlrev_b32 v40, 2, v0\n"
         "  v_lshl_add_u32 v40, s2, 8, v40\n"  // + 256 bytes per group: one row per 64 items
         "  global_load_dword v1, v40, s[6:7]\n  global_load_dword v2, v40, s[6:7] offset:1024\n"
         "  global_load_dword v3, v40, s[6:7] offset:2048\n  s_waitcnt vmcnt(0)\n";
  s += k.body + "\n";
  if (k.prelude) s += "  global_store_dword v40, v4, s[4:5]\n  s_endpgm\n";
  s += ".Lk_end:\n.size k, .Lk_end-k\n.rodata\n.p2align 6\n.amdhsa_kernel k\n  .amdhsa_user_sgpr_kernarg_segment_ptr 1\n"
       "  .amdhsa_next_free_vgpr 64\n  .amdhsa_next_free_sgpr 48\n  .amdhsa_accum_offset 64\n";
  s += "  .amdhsa_group_segment_fixed_size " + std::to_string(k.lds_bytes) + "\n" + k.directives + "\n.end_amdhsa_kernel\n";
  s += ".amdgpu_metadata\n---\namdhsa.version: [ 1, 2 ]\namdhsa.target: amdgcn-amd-amdhsa--gfx942\namdhsa.kernels:\n  - .name: k\n    .symbol: k.kd\n"
       "    .kernarg_segment_size: 16\n    .kernarg_segment_align: 8\n    .group_segment_fixed_size: " + std::to_string(k.lds_bytes) +
       "\n    .private_segment_fixed_size: 0\n    .wavefront_size: 64\n    .sgpr_count: 48\n    .vgpr_count: 64\n"
       "    .max_flat_workgroup_size: 256\n...\n.end_amdgpu_metadata\n";
  return s;
}

inline int shell(const std::string& cmd, std::string& out) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return pclose(f);
}

// Assembles and links; an empty result (with the tools' message in `error`) when that fails.
inline std::vector<uint8_t> build(const AsmKernel& k, std::string& error) {
  Toolchain tools = find_toolchain();
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("lathe-asm-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "k.s") << assembly(k);
  if (shell("'" + tools.clang + "' -x assembler -target amdgcn-amd-amdhsa -mcpu=gfx942 -c '" + (dir / "k.s").string() + "' -o '" +
                (dir / "k.o").string() + "' && '" + tools.lld + "' -shared '" + (dir / "k.o").string() + "' -o '" + (dir / "k.co").string() + "'",
            error) != 0)
    return {};
  std::ifstream in(dir / "k.co", std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Run {
  std::vector<uint32_t> out;
  std::string fault;  // the driver's fault, if the dispatch faulted
  EmulatorDriver::Counters counters;
};

// Dispatches the kernel over `in` (3 rows of work_items words: v1, v2, v3), with the code
// object's bytes changed by `patch` first (for broken-descriptor tests).
inline Run run(const AsmKernel& k, const std::vector<uint32_t>& in, void (*patch)(CodeObject&, std::vector<uint8_t>&) = nullptr) {
  std::string error;
  std::vector<uint8_t> elf = build(k, error);
  EXPECT_FALSE(elf.empty()) << error << "\n" << assembly(k);
  Run r;
  if (elf.empty()) return r;
  EmulatorDriver d;
  KfdGpu gpu(d, read_topology(d.topology_root()).at(0));
  CodeObject co = read_code_object(elf);
  GpuMemory code = gpu.alloc(co.image.size(), MemoryKind::Gtt, true, true);
  std::vector<uint8_t> placed = co.placed_at(code.va);
  if (patch) patch(co, placed);
  std::memcpy(code.host, placed.data(), placed.size());
  d.code_loaded(co, code.va);
  const size_t words = 3 * 256 * 4;  // room for 4 groups of 64 per row
  GpuMemory input = gpu.alloc(words * 4, MemoryKind::Gtt, true), output = gpu.alloc(words * 4, MemoryKind::Gtt, true);
  GpuMemory args = gpu.alloc(4096, MemoryKind::Gtt, true);
  std::memset(input.host, 0, words * 4);
  std::memset(output.host, 0xcd, words * 4);
  for (int row = 0; row < 3; ++row)
    for (uint32_t i = 0; i < k.work_items && row * k.work_items + i < in.size(); ++i)
      static_cast<uint32_t*>(input.host)[row * 256 + i] = in[row * k.work_items + i];
  uint64_t kernarg[2] = {output.va, input.va};
  std::memcpy(args.host, kernarg, sizeof kernarg);
  const KernelInfo& info = co.kernel("k");
  KernelDescriptor kd;
  std::memcpy(&kd, placed.data() + info.descriptor_offset, sizeof kd);
  gpu.dispatch(code.va + info.descriptor_offset, args.va, k.work_items, static_cast<uint16_t>(k.group), kd.group_segment_fixed_size, 0);
  try {
    gpu.wait_idle();
  } catch (const std::exception& e) {
    r.fault = e.what();
  }
  r.out.assign(static_cast<uint32_t*>(output.host), static_cast<uint32_t*>(output.host) + k.work_items);
  r.counters = d.counters();
  return r;
}

// One row of inputs: v1 = a, v2 = b, v3 = c in every lane (lane i gets element i of each).
inline std::vector<uint32_t> rows(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b = {}, const std::vector<uint32_t>& c = {},
                                  uint32_t lanes = 64) {
  std::vector<uint32_t> in(3 * lanes, 0);
  for (uint32_t i = 0; i < lanes; ++i) {
    in[i] = a.empty() ? 0 : a[i % a.size()];
    in[lanes + i] = b.empty() ? 0 : b[i % b.size()];
    in[2 * lanes + i] = c.empty() ? 0 : c[i % c.size()];
  }
  return in;
}

inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float value(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace lathe::amd::asm_test
