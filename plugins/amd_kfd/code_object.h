// AMDGPU code objects: compiled from the AMDGPU dialect's source with clang and lld (no ROCm,
// no device libraries), read by a loader of our own: the loadable image, each kernel's
// descriptor and the metadata the dispatch needs (kernarg size, segment sizes, registers).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lathe::amd {

// The 64-byte kernel descriptor (LLVM AMDGPUUsage, "Kernel Descriptor").
struct KernelDescriptor {
  uint32_t group_segment_fixed_size;
  uint32_t private_segment_fixed_size;
  uint32_t kernarg_size;
  uint8_t reserved0[4];
  int64_t kernel_code_entry_byte_offset;  // from the descriptor's own address
  uint8_t reserved1[20];
  uint32_t compute_pgm_rsrc3;
  uint32_t compute_pgm_rsrc1;
  uint32_t compute_pgm_rsrc2;
  uint16_t kernel_code_properties;
  uint16_t kernarg_preload;
  uint8_t reserved2[4];
};
static_assert(sizeof(KernelDescriptor) == 64);

struct KernelInfo {
  std::string name;
  uint64_t descriptor_offset = 0;  // of <name>.kd in the image
  uint64_t entry_offset = 0;       // of <name> (the machine code) in the image
  uint64_t code_size = 0;          // bytes of machine code (the symbol's size)
  KernelDescriptor descriptor{};
  // From the metadata note.
  uint32_t kernarg_size = 0, kernarg_align = 8, group_segment_size = 0, private_segment_size = 0;
  uint32_t sgpr_count = 0, vgpr_count = 0, wavefront_size = 64, max_flat_workgroup_size = 0;
};

struct Relocation {
  uint64_t offset;  // in the image: a 64-bit slot that receives load address + addend
  int64_t addend;
};

struct CodeObject {
  std::string target;            // amdgcn-amd-amdhsa--gfx942
  std::vector<uint8_t> image;    // the PT_LOAD segments at their virtual addresses from 0
  std::vector<Relocation> relocations;
  std::vector<KernelInfo> kernels;
  const KernelInfo& kernel(const std::string& name) const;
  // The image as it must lie at GPU address `base` (relocations applied).
  std::vector<uint8_t> placed_at(uint64_t base) const;
};

// Reads an ELF64 AMDGPU code object; throws lathe::Error saying what is wrong and where.
CodeObject read_code_object(const std::vector<uint8_t>& elf);

struct Toolchain {
  std::string clang, lld;  // found on PATH as clang-19/ld.lld-19 etc., or set by options/env
};
// LATHE_AMDGPU_CLANG / LATHE_AMDGPU_LLD, else the newest clang-NN and ld.lld-NN on PATH.
Toolchain find_toolchain(const std::string& clang = "", const std::string& lld = "");
// Compiles the AMDGPU dialect's source for `target` (e.g. gfx942) into a code object. The
// failing command's output and a copy of the source (written next to `work_dir`) are in the error.
std::vector<uint8_t> compile_code_object(const std::string& source, const std::string& target, const Toolchain& tools,
                                         const std::string& work_dir, const std::string& extra_flags = "");

}  // namespace lathe::amd
