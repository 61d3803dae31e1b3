// gfx11's mnemonics: most name a gfx9 operation anew (s_load_b32 is s_load_dword, v_add_nc_u32
// is v_add_u32), so they share its executor; the few operations gfx9 lacks are defined here.
#include <deque>
#include <string>

#include "gcn_program.h"
#include "gcn_valu.h"
#include "gcn_wave.h"

namespace lathe::amd::emu {
namespace {

// gfx11 name -> the gfx9 name of the same operation.
const char* const kSameAs[][2] = {
    {"s_load_b32", "s_load_dword"}, {"s_load_b64", "s_load_dwordx2"}, {"s_load_b128", "s_load_dwordx4"},
    {"s_load_b256", "s_load_dwordx8"}, {"s_load_b512", "s_load_dwordx16"},
    {"ds_load_b32", "ds_read_b32"}, {"ds_load_b64", "ds_read_b64"}, {"ds_load_b96", "ds_read_b96"}, {"ds_load_b128", "ds_read_b128"},
    {"ds_load_u8", "ds_read_u8"}, {"ds_load_i8", "ds_read_i8"}, {"ds_load_u16", "ds_read_u16"}, {"ds_load_i16", "ds_read_i16"},
    {"ds_store_b8", "ds_write_b8"}, {"ds_store_b16", "ds_write_b16"}, {"ds_store_b32", "ds_write_b32"}, {"ds_store_b64", "ds_write_b64"},
    {"ds_store_b96", "ds_write_b96"}, {"ds_store_b128", "ds_write_b128"}, {"ds_load_2addr_b32", "ds_read2_b32"},
    {"ds_load_2addr_b64", "ds_read2_b64"}, {"ds_load_2addr_stride64_b32", "ds_read2st64_b32"},
    {"ds_load_2addr_stride64_b64", "ds_read2st64_b64"}, {"ds_store_2addr_b32", "ds_write2_b32"}, {"ds_store_2addr_b64", "ds_write2_b64"},
    {"ds_store_2addr_stride64_b32", "ds_write2st64_b32"}, {"ds_store_2addr_stride64_b64", "ds_write2st64_b64"},
    {"ds_storexchg_rtn_b32", "ds_wrxchg_rtn_b32"}, {"ds_cmpstore_rtn_b32", "ds_cmpst_rtn_b32"},
    {"v_add_nc_u32", "v_add_u32"}, {"v_sub_nc_u32", "v_sub_u32"}, {"v_subrev_nc_u32", "v_subrev_u32"},
    {"v_add_co_ci_u32", "v_addc_co_u32"}, {"v_sub_co_ci_u32", "v_subb_co_u32"}, {"v_subrev_co_ci_u32", "v_subbrev_co_u32"},
    {"v_add_nc_u16", "v_add_u16"}, {"v_sub_nc_u16", "v_sub_u16"}, {"v_mul_dx9_zero_f32", "v_mul_legacy_f32"},
    {"s_and_not1_b32", "s_andn2_b32"}, {"s_and_not1_b64", "s_andn2_b64"}, {"s_or_not1_b32", "s_orn2_b32"}, {"s_or_not1_b64", "s_orn2_b64"},
    {"v_clz_i32_u32", "v_ffbh_u32"}, {"v_ctz_i32_b32", "v_ffbl_b32"}, {"v_cls_i32", "v_ffbh_i32"},
    {"s_ctz_i32_b32", "s_ff1_i32_b32"}, {"s_ctz_i32_b64", "s_ff1_i32_b64"}, {"s_clz_i32_u32", "s_flbit_i32_b32"},
    // wave32's EXEC forms: the executors read and write as many mask bits as the wave has lanes.
    {"s_and_saveexec_b32", "s_and_saveexec_b64"}, {"s_or_saveexec_b32", "s_or_saveexec_b64"},
    {"s_xor_saveexec_b32", "s_xor_saveexec_b64"}, {"s_and_not1_saveexec_b32", "s_andn2_saveexec_b64"},
    {"s_or_not1_saveexec_b32", "s_orn2_saveexec_b64"}, {"s_and_not0_saveexec_b32", "s_andn1_saveexec_b64"},
    {"s_or_not0_saveexec_b32", "s_orn1_saveexec_b64"}, {"s_and_not0_wrexec_b32", "s_andn1_wrexec_b64"},
    {"s_and_not1_wrexec_b32", "s_andn2_wrexec_b64"}, {"s_and_not1_saveexec_b64", "s_andn2_saveexec_b64"},
    {"s_or_not1_saveexec_b64", "s_orn2_saveexec_b64"},
};

// Scheduling hints without an effect on results.
// (Caches: the emulator's memory has none to invalidate.)
const char* const kHints[] = {"buffer_gl0_inv", "buffer_gl1_inv", "s_sendmsg_dealloc_vgprs", "s_delay_alu", "s_clause", "s_waitcnt_depctr", "s_set_inst_prefetch_distance", "s_waitcnt_vscnt",
                              "s_waitcnt_vmcnt", "s_waitcnt_expcnt", "s_waitcnt_lgkmcnt"};

// v_fmamk_f32: D = S0 * K + S1; v_fmaak_f32: D = S0 * S1 + K (K is the literal, in src[2]).
template <bool KMiddle>
void fma_constant(Wave& w, const Inst& in) {
  static const Handler fma = op_table().at("v_fma_f32");
  Inst three = in;
  three.encoding = Encoding::Vop3;
  if (KMiddle) three.src[1] = in.src[2], three.src[2] = in.src[1];
  fma(w, three);
}

}  // namespace

void add_gfx11_ops(OpTable& t) {
  for (auto& [name, same] : kSameAs) t[name] = t.at(same);
  const char* memory[][2] = {{"load_u8", "load_ubyte"}, {"load_i8", "load_sbyte"}, {"load_u16", "load_ushort"}, {"load_i16", "load_sshort"},
                             {"load_b32", "load_dword"}, {"load_b64", "load_dwordx2"}, {"load_b96", "load_dwordx3"}, {"load_b128", "load_dwordx4"},
                             {"store_b8", "store_byte"}, {"store_b16", "store_short"}, {"store_b32", "store_dword"}, {"store_b64", "store_dwordx2"},
                             {"store_b96", "store_dwordx3"}, {"store_b128", "store_dwordx4"}, {"atomic_add_u32", "atomic_add"},
                             {"atomic_sub_u32", "atomic_sub"}, {"atomic_swap_b32", "atomic_swap"}, {"atomic_cmpswap_b32", "atomic_cmpswap"},
                             {"atomic_max_u32", "atomic_umax"}, {"atomic_min_u32", "atomic_umin"}, {"atomic_max_i32", "atomic_smax"},
                             {"atomic_min_i32", "atomic_smin"}, {"atomic_and_b32", "atomic_and"}, {"atomic_or_b32", "atomic_or"},
                             {"atomic_xor_b32", "atomic_xor"}};
  static std::deque<std::string> names;  // the table keeps views of them (a deque never moves its elements)
  for (const char* seg : {"global_", "flat_"})
    for (auto& [name, same] : memory) {
      names.push_back(std::string(seg) + name);
      t[names.back()] = t.at(std::string(seg) + same);
    }
  for (const char* hint : kHints) t[hint] = [](Wave&, const Inst&) {};
  t["v_fmamk_f32"] = fma_constant<true>;
  t["v_fmaak_f32"] = fma_constant<false>;
}

}  // namespace lathe::amd::emu
