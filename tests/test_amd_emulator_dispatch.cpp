// The AMD emulator at the dispatch level: LDS shared by the waves of a work-group across a
// barrier, LDS bounds, page faults, instructions it does not cover, and code objects with a
// wrong descriptor failing the way they would on a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <sstream>

#include "amd_asm_harness.h"
#include "emulator/gcn_program.h"

namespace lathe::amd {
namespace {

using asm_test::AsmKernel;
using asm_test::rows;

bool have_tools() { return !find_toolchain().clang.empty() && !find_toolchain().lld.empty(); }
#define NEED_TOOLS() \
  if (!have_tools()) GTEST_SKIP() << "no clang/ld.lld for AMDGPU on PATH"

// Each of 256 work-items (4 waves) writes its input to LDS; after the barrier it reads its
// mirror's (255 - id): every wave sees what the others wrote.
AsmKernel mirror_kernel() {
  AsmKernel k;
  k.work_items = 256, k.group = 256, k.lds_bytes = 1024;
  k.body = "v_lshlrev_b32 v5, 2, v0\nds_write_b32 v5, v1\ns_waitcnt lgkmcnt(0)\ns_barrier\n"
           "v_sub_u32 v6, 0xff, v0\nv_lshlrev_b32 v6, 2, v6\nds_read_b32 v4, v6\ns_waitcnt lgkmcnt(0)";
  return k;
}

std::vector<uint32_t> iota_rows(uint32_t n) {
  std::vector<uint32_t> in(3 * n, 0);
  for (uint32_t i = 0; i < n; ++i) in[i] = 1000 + i;
  return in;
}

TEST(AmdEmulatorDispatch, WavesOfAGroupShareLdsAcrossTheBarrier) {
  NEED_TOOLS();
  auto r = asm_test::run(mirror_kernel(), iota_rows(256));
  ASSERT_TRUE(r.fault.empty()) << r.fault;
  for (uint32_t i = 0; i < 256; ++i) ASSERT_EQ(r.out[i], 1000 + (255 - i)) << "work-item " << i;
  EXPECT_EQ(r.counters.dispatches, 1u);
  EXPECT_EQ(r.counters.waves, 4u);
  EXPECT_GT(r.counters.instructions, 4u * 10);
}

TEST(AmdEmulatorDispatch, LdsOutsideTheGroupsAllocationReadsZeroAndDropsWrites) {
  NEED_TOOLS();
  AsmKernel k;
  k.lds_bytes = 256;
  // Lane l writes at 4 l + 128: lanes 32 and up fall outside the 256 bytes.
  k.body = "v_lshlrev_b32 v5, 2, v0\nds_write_b32 v5, v1 offset:128\ns_waitcnt lgkmcnt(0)\nds_read_b32 v4, v5 offset:128\ns_waitcnt lgkmcnt(0)";
  auto r = asm_test::run(k, iota_rows(64));
  ASSERT_TRUE(r.fault.empty()) << r.fault;
  for (uint32_t l = 0; l < 64; ++l) EXPECT_EQ(r.out[l], l < 32 ? 1000 + l : 0u) << "lane " << l;
}

// Whether the dispatch of `body` faulted with a message naming every one of `parts`.
::testing::AssertionResult faults_naming(const std::string& body, const std::vector<std::string>& parts) {
  AsmKernel k;
  k.body = body;
  const std::string fault = asm_test::run(k, iota_rows(64)).fault;
  for (const std::string& part : parts)
    if (fault.find(part) == std::string::npos) return ::testing::AssertionFailure() << "'" << part << "' not in: " << fault;
  return ::testing::AssertionSuccess();
}

TEST(AmdEmulatorDispatch, AccessOutsideEveryAllocationIsAPageFault) {
  NEED_TOOLS();
  EXPECT_TRUE(faults_naming("v_mov_b32 v10, 0x1000\nv_mov_b32 v11, 0\nglobal_load_dword v4, v[10:11], off\ns_waitcnt vmcnt(0)",
                            {"global_load_dword", "0x1000", "page fault", "kernel k"}));
}

TEST(AmdEmulatorDispatch, AnInstructionItDoesNotCoverStopsTheDispatchWithItsName) {
  NEED_TOOLS();
  EXPECT_TRUE(faults_naming("v_sad_u8 v4, v1, v2, v3", {"does not cover v_sad_u8", "VOP3 opcode 0x1d9"}));
}

// compute_pgm_rsrc2 bits 1-5: USER_SGPR_COUNT.
void one_user_sgpr(CodeObject& co, std::vector<uint8_t>& image) {
  KernelDescriptor kd;
  std::memcpy(&kd, image.data() + co.kernel("k").descriptor_offset, sizeof kd);
  kd.compute_pgm_rsrc2 = (kd.compute_pgm_rsrc2 & ~0x3eu) | (1u << 1);
  std::memcpy(image.data() + co.kernel("k").descriptor_offset, &kd, sizeof kd);
}
void no_lds(CodeObject& co, std::vector<uint8_t>& image) {
  KernelDescriptor kd;
  std::memcpy(&kd, image.data() + co.kernel("k").descriptor_offset, sizeof kd);
  kd.group_segment_fixed_size = 0;
  std::memcpy(image.data() + co.kernel("k").descriptor_offset, &kd, sizeof kd);
}

TEST(AmdEmulatorDispatch, BrokenDescriptorsFailAsOnAGpu) {
  NEED_TOOLS();
  // One user SGPR where the kernarg pointer needs two: the pointer's high half is the work-group
  // id the hardware puts right after the user SGPRs (0), so the first load faults.
  AsmKernel k = mirror_kernel();
  auto bad_sgprs = asm_test::run(k, iota_rows(256), one_user_sgpr);
  EXPECT_NE(bad_sgprs.fault.find("s_load_dwordx4"), std::string::npos) << bad_sgprs.fault;
  EXPECT_NE(bad_sgprs.fault.find("page fault"), std::string::npos) << bad_sgprs.fault;
  // No group segment in the descriptor (the runtime then allocates none): the LDS writes are
  // dropped and the reads return 0, so every result is 0 instead of the mirror's input.
  auto bad_lds = asm_test::run(k, iota_rows(256), no_lds);
  ASSERT_TRUE(bad_lds.fault.empty()) << bad_lds.fault;
  for (uint32_t i = 0; i < 256; ++i) ASSERT_EQ(bad_lds.out[i], 0u) << "work-item " << i;
}

// docs/amd_emulator.md lists what the emulator covers: every executor's mnemonic is named there
// (the compares by family).
TEST(AmdEmulatorDispatch, TheDocumentationListsEveryCoveredInstruction) {
  std::ifstream in(std::string(LATHE_DOCS) + "/amd_emulator.md");
  std::stringstream doc;
  doc << in.rdbuf();
  ASSERT_FALSE(doc.str().empty());
  int compares = 0;
  for (std::string_view name : emu::covered_mnemonics()) {
    if (name.starts_with("v_cmp")) {
      ++compares;
      continue;
    }
    EXPECT_NE(doc.str().find("`" + std::string(name) + "`"), std::string::npos) << name << " is not in docs/amd_emulator.md";
  }
  EXPECT_EQ(compares, 2 * (16 * 3 + 8 * 6 + 3));  // v_cmp and v_cmpx, each condition of each type, and the class tests
}

}  // namespace
}  // namespace lathe::amd
