// The gfx9 encodings (CDNA3's gfx942 among them): fields by the ISA's microcode formats,
// opcode names from the generated tables.
#include "gcn_decode.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "lathe/error.h"

namespace lathe::amd::emu {
namespace {

constexpr int kEncodings = static_cast<int>(Encoding::Unknown) + 1;

// Opcode -> name per encoding, parsed once from the generated lists.
class Names {
 public:
  explicit Names(const std::vector<OpcodeList>& lists) {
    for (const OpcodeList& list : lists) {
      auto& table = tables_[static_cast<int>(list.encoding)];
      const char* p = list.names;
      while (*p) {
        char* end;
        unsigned long op = std::strtoul(p, &end, 16);
        const char* name = end + 1;  // past ':'
        const char* stop = name;
        while (*stop && *stop != ' ') ++stop;
        table[static_cast<uint16_t>(op)] = std::string_view(name, static_cast<size_t>(stop - name));
        p = *stop ? stop + 1 : stop;
      }
    }
  }
  std::string_view find(Encoding e, uint16_t op) const {
    const auto& table = tables_[static_cast<int>(e)];
    auto it = table.find(op);
    return it == table.end() ? std::string_view() : it->second;
  }

 private:
  std::array<std::map<uint16_t, std::string_view>, kEncodings> tables_;
};

const Names& gfx9_names() {
  static const Names names(gfx9_opcodes());
  return names;
}
const Names& gfx11_names() {
  static const Names names(gfx11_opcodes());
  return names;
}

// A 9-bit source field: 0-255 the scalar space, 256-511 VGPRs.
Operand source(uint32_t field) {
  if (field >= 256) return {Operand::Vector, static_cast<uint16_t>(field - 256), 0};
  if (field == reg::kLiteral) return {Operand::Literal, 0, 0};
  return {Operand::Scalar, static_cast<uint16_t>(field), 0};
}
Operand scalar(uint32_t field) { return field == reg::kLiteral ? Operand{Operand::Literal, 0, 0} : Operand{Operand::Scalar, static_cast<uint16_t>(field), 0}; }
Operand vgpr(uint32_t index) { return {Operand::Vector, static_cast<uint16_t>(index), 0}; }

bool is_vop3b(std::string_view n) {
  return n == "v_add_co_u32" || n == "v_sub_co_u32" || n == "v_subrev_co_u32" || n == "v_addc_co_u32" || n == "v_subb_co_u32" ||
         n == "v_subbrev_co_u32" || n == "v_div_scale_f32" || n == "v_div_scale_f64" || n == "v_mad_u64_u32" || n == "v_mad_i64_i32";
}
// Instructions whose vector destination field names a scalar register.
bool writes_scalar(std::string_view n) { return n == "v_readlane_b32" || n == "v_readfirstlane_b32"; }

void decode_sdwa(Inst& in, uint32_t w) {
  in.sdwa.on = true;
  in.src[0] = (w >> 23) & 1 ? scalar(w & 0xff) : vgpr(w & 0xff);
  in.sdwa.dst_sel = (w >> 8) & 7;
  in.sdwa.dst_unused = (w >> 11) & 3;
  in.clamp = (w >> 13) & 1;
  in.omod = (w >> 14) & 3;
  in.sdwa.sel[0] = (w >> 16) & 7;
  in.sdwa.sext[0] = (w >> 19) & 1;
  in.neg |= (w >> 20) & 1;
  in.abs |= (w >> 21) & 1;
  in.sdwa.sel[1] = (w >> 24) & 7;
  in.sdwa.sext[1] = (w >> 27) & 1;
  in.neg |= ((w >> 28) & 1) << 1;
  in.abs |= ((w >> 29) & 1) << 1;
  if ((w >> 31) & 1 && in.src[1].kind == Operand::Vector) in.src[1] = scalar(in.src[1].index);
  if (in.encoding == Encoding::Vopc && (w >> 15) & 1) in.sdst = scalar((w >> 8) & 0x7f);
}

// VOP1, VOP2 and VOPC: one dword, then SDWA, DPP or a literal.
void decode_vop_short(Inst& in, uint32_t w, const uint32_t* words, size_t available) {
  uint32_t src0 = w & 0x1ff;
  if (in.encoding == Encoding::Vop2) {
    in.dst = vgpr((w >> 17) & 0xff);
    in.src[0] = source(src0);
    in.src[1] = vgpr((w >> 9) & 0xff);
  } else if (in.encoding == Encoding::Vop1) {
    in.dst = vgpr((w >> 17) & 0xff);
    in.src[0] = source(src0);
  } else {
    in.sdst = scalar(reg::kVccLo);
    in.src[0] = source(src0);
    in.src[1] = vgpr((w >> 9) & 0xff);
  }
  if (src0 == 0xf9 || src0 == 0xfa || src0 == reg::kLiteral) {
    if (available < 2) throw Error("amd_kfd emulator: instruction at the end of the code wants a second dword");
    in.words[1] = words[1];
    in.size = 2;
    if (src0 == 0xf9) decode_sdwa(in, words[1]);
    else if (src0 == 0xfa) in.dpp = true;
    else in.src[0].literal = words[1];
  }
  if (writes_scalar(in.name)) in.dst = scalar(in.dst.index);
  if (in.name == "v_accvgpr_mov_b32") {  // AGPR to AGPR, in VOP1's register fields
    in.dst.index += reg::kAgprBase;
    if (in.src[0].is_vector()) in.src[0].index += reg::kAgprBase;
  }
}

void decode_vop3(Inst& in, uint32_t w0, uint32_t w1) {
  in.opcode = (w0 >> 16) & 0x3ff;
  const Names& names = gfx9_names();
  if (in.opcode < 0x100) in.name = names.find(Encoding::Vopc, in.opcode);
  else if (in.opcode < 0x140) in.name = names.find(Encoding::Vop2, in.opcode - 0x100);
  else if (in.opcode < 0x1c0) in.name = names.find(Encoding::Vop1, in.opcode - 0x140);
  else in.name = names.find(Encoding::Vop3, in.opcode);
  for (int i = 0; i < 3; ++i) in.src[i] = source((w1 >> (9 * i)) & 0x1ff);
  in.omod = (w1 >> 27) & 3;
  in.neg = (w1 >> 29) & 7;
  in.clamp = (w0 >> 15) & 1;
  if (is_vop3b(in.name)) {
    in.sdst = scalar((w0 >> 8) & 0x7f);
  } else {
    in.abs = (w0 >> 8) & 7;
    in.op_sel = (w0 >> 11) & 0xf;
  }
  if (in.opcode < 0x100) in.sdst = scalar(w0 & 0xff);  // a compare: the mask goes to an SGPR pair
  else if (writes_scalar(in.name)) in.dst = scalar(w0 & 0xff);
  else in.dst = vgpr(w0 & 0xff);
}

void decode_vop3p(Inst& in, uint32_t w0, uint32_t w1) {
  in.opcode = (w0 >> 16) & 0x7f;
  in.name = gfx9_names().find(Encoding::Vop3p, in.opcode);
  for (int i = 0; i < 3; ++i) in.src[i] = source((w1 >> (9 * i)) & 0x1ff);
  in.dst = vgpr(w0 & 0xff);
  in.neg = (w1 >> 29) & 7;
  if (in.name.find("mfma") != std::string_view::npos) {
    // Matrix instructions: ACC_CD puts C and D in AGPRs, ACC (bits 59-60) A and B; CBSZ, ABID
    // (bits 8-14) and BLGP (61-63) broadcast operands between lanes.
    in.neg = 0;
    in.broadcast = ((w0 >> 8) & 0x7f) != 0 || ((w1 >> 29) & 7) != 0;
    if ((w0 >> 15) & 1) {
      in.dst.index += reg::kAgprBase;
      if (in.src[2].is_vector()) in.src[2].index += reg::kAgprBase;
    }
    for (int i = 0; i < 2; ++i)
      if ((w1 >> (27 + i)) & 1 && in.src[i].is_vector()) in.src[i].index += reg::kAgprBase;
    return;
  }
  in.neg_hi = (w0 >> 8) & 7;
  in.op_sel = (w0 >> 11) & 7;
  in.op_sel_hi = static_cast<uint8_t>(((w1 >> 27) & 3) | (((w0 >> 14) & 1) << 2));
  in.clamp = (w0 >> 15) & 1;
  if (in.name == "v_accvgpr_write_b32") in.dst.index += reg::kAgprBase;
  if (in.name == "v_accvgpr_read_b32" && in.src[0].is_vector()) in.src[0].index += reg::kAgprBase;
  if (in.name == "v_accvgpr_mov_b32") {
    in.dst.index += reg::kAgprBase;
    in.src[0].index += reg::kAgprBase;
  }
}

}  // namespace

void scalar_alu_fields(Inst& in, uint32_t w) {
  const uint32_t top9 = w >> 23;
  if (top9 == 0x17d) {
    in.encoding = Encoding::Sop1;
    in.opcode = (w >> 8) & 0xff;
    in.dst = scalar((w >> 16) & 0x7f);
    in.src[0] = scalar(w & 0xff);
  } else if (top9 == 0x17e) {
    in.encoding = Encoding::Sopc;
    in.opcode = (w >> 16) & 0x7f;
    in.src[0] = scalar(w & 0xff);
    in.src[1] = scalar((w >> 8) & 0xff);
  } else if (top9 == 0x17f) {
    in.encoding = Encoding::Sopp;
    in.opcode = (w >> 16) & 0x7f;
    in.offset = static_cast<int16_t>(w & 0xffff);
  } else if ((w >> 28) == 0xb) {
    in.encoding = Encoding::Sopk;
    in.opcode = (w >> 23) & 0x1f;
    in.dst = scalar((w >> 16) & 0x7f);
    in.offset = static_cast<int16_t>(w & 0xffff);
  } else {
    in.encoding = Encoding::Sop2;
    in.opcode = (w >> 23) & 0x7f;
    in.dst = scalar((w >> 16) & 0x7f);
    in.src[0] = scalar(w & 0xff);
    in.src[1] = scalar((w >> 8) & 0xff);
  }
}

std::string_view opcode_name(Family family, Encoding encoding, uint16_t opcode) {
  return (family == Family::Gfx11 ? gfx11_names() : gfx9_names()).find(encoding, opcode);
}

const char* encoding_name(Encoding e) {
  static const char* names[] = {"SOP2", "SOPK", "SOP1", "SOPC", "SOPP", "SMEM", "VOP2", "VOP1", "VOPC", "VOP3", "VOP3P", "DS", "FLAT", "GLOBAL", "SCRATCH", "VOPD", "unknown"};
  return names[static_cast<int>(e)];
}

Family family_of(const std::string& target) {
  if (target == "gfx90a" || target == "gfx940" || target == "gfx941" || target == "gfx942") return Family::Gfx9;
  if (target == "gfx1100" || target == "gfx1101" || target == "gfx1102" || target == "gfx1103") return Family::Gfx11;
  throw Error("amd_kfd emulator: target " + target + " is not covered (covered: gfx90a, gfx942, gfx1100)");
}

Inst decode(Family family, const uint32_t* words, size_t available, uint32_t pc) {
  if (family == Family::Gfx11) return decode_gfx11(words, available, pc);
  Inst in;
  in.pc = pc;
  const uint32_t w = words[0];
  in.words[0] = w;
  const Names& names = gfx9_names();
  auto second = [&]() {
    if (available < 2) throw Error("amd_kfd emulator: instruction at byte " + std::to_string(pc) + " wants a second dword past the code's end");
    in.words[1] = words[1];
    in.size = 2;
    return words[1];
  };
  auto literal_of = [&](Operand& o) {
    if (o.kind == Operand::Literal && in.size == 1) o.literal = second();
    else if (o.kind == Operand::Literal) o.literal = in.words[1];
  };
  if ((w >> 30) == 2) {  // scalar ALU
    scalar_alu_fields(in, w);
    in.name = names.find(in.encoding, in.opcode);
    literal_of(in.src[0]);
    literal_of(in.src[1]);
    if (in.name == "s_setreg_imm32_b32") in.src[0].literal = second();
    return in;
  }
  if ((w >> 31) == 0) {  // VOP2, VOP1, VOPC
    const uint32_t op6 = (w >> 25) & 0x3f;
    if (op6 == 0x3f) {
      in.encoding = Encoding::Vop1;
      in.opcode = (w >> 9) & 0xff;
    } else if (op6 == 0x3e) {
      in.encoding = Encoding::Vopc;
      in.opcode = (w >> 17) & 0xff;
    } else {
      in.encoding = Encoding::Vop2;
      in.opcode = static_cast<uint16_t>(op6);
    }
    in.name = names.find(in.encoding, in.opcode);
    decode_vop_short(in, w, words, available);
    return in;
  }
  const uint32_t top6 = w >> 26;
  if (top6 == 0x34) {  // VOP3 or VOP3P
    const uint32_t w1 = second();
    if ((w >> 23) == 0x1a7) {
      in.encoding = Encoding::Vop3p;
      decode_vop3p(in, w, w1);
    } else {
      in.encoding = Encoding::Vop3;
      decode_vop3(in, w, w1);
    }
    return in;
  }
  if (top6 == 0x30) {  // SMEM
    const uint32_t w1 = second();
    in.encoding = Encoding::Smem;
    in.opcode = (w >> 18) & 0xff;
    in.name = names.find(in.encoding, in.opcode);
    in.src[0] = scalar((w & 0x3f) * 2);  // base address pair
    in.dst = scalar((w >> 6) & 0x7f);
    in.glc = (w >> 16) & 1;
    const bool imm = (w >> 17) & 1, soe = (w >> 14) & 1;
    if (imm) in.offset = static_cast<int32_t>(w1 << 11) >> 11;  // 21-bit signed
    else in.src[1] = scalar(w1 & 0xff);
    if (soe) in.src[1] = scalar((w1 >> 25) & 0x7f);
    return in;
  }
  if (top6 == 0x36) {  // DS
    const uint32_t w1 = second();
    in.encoding = Encoding::Ds;
    in.opcode = (w >> 17) & 0xff;
    in.name = names.find(in.encoding, in.opcode);
    in.offset = w & 0xff;
    in.offset1 = (w >> 8) & 0xff;
    const uint16_t acc = (w >> 25) & 1 ? reg::kAgprBase : 0;
    in.src[0] = vgpr(w1 & 0xff);  // address
    in.src[1] = vgpr(((w1 >> 8) & 0xff) + acc);
    in.src[2] = vgpr(((w1 >> 16) & 0xff) + acc);
    in.dst = vgpr(((w1 >> 24) & 0xff) + acc);
    if ((w >> 16) & 1) in.name = "";  // GDS: no such memory here
    return in;
  }
  if (top6 == 0x37) {  // FLAT, GLOBAL, SCRATCH
    const uint32_t w1 = second();
    const uint32_t seg = (w >> 14) & 3;
    in.encoding = seg == 0 ? Encoding::Flat : seg == 1 ? Encoding::Scratch : Encoding::Global;
    in.opcode = (w >> 18) & 0x7f;
    in.name = seg == 3 ? std::string_view() : names.find(in.encoding, in.opcode);
    in.offset = seg == 0 ? static_cast<int32_t>(w & 0xfff) : static_cast<int32_t>(w << 19) >> 19;  // 12 bits, or 13 signed
    in.glc = (w >> 16) & 1;
    const uint16_t acc = (w1 >> 23) & 1 ? reg::kAgprBase : 0;
    in.src[0] = vgpr(w1 & 0xff);  // address (a pair, or a 32-bit offset with an SGPR base)
    in.src[1] = vgpr(((w1 >> 8) & 0xff) + acc);
    const uint32_t saddr = (w1 >> 16) & 0x7f;
    if (in.encoding != Encoding::Flat && saddr != 0x7f) in.src[2] = scalar(saddr);
    in.dst = vgpr(((w1 >> 24) & 0xff) + acc);
    if ((w >> 13) & 1) in.name = "";  // LDS DMA form: not covered
    return in;
  }
  in.encoding = Encoding::Unknown;
  in.opcode = static_cast<uint16_t>(top6);
  if (top6 == 0x38 || top6 == 0x3a) in.size = 2;  // MUBUF/MTBUF: two dwords, not covered
  return in;
}

std::string describe(const Inst& in) {
  char buf[160];
  std::string words;
  for (int i = 0; i < in.size && i < 3; ++i) {
    char w[12];
    std::snprintf(w, sizeof w, "%s0x%08x", i ? " " : "", in.words[i]);
    words += w;
  }
  std::string name = in.name.empty() ? "an unknown instruction" : std::string(in.name);
  if (in.dual) name = "v_dual_" + std::string(in.dual->x.name.empty() ? "?" : in.dual->x.name.substr(2)) + " :: v_dual_" +
                      std::string(in.dual->y.name.empty() ? "?" : in.dual->y.name.substr(2));
  std::snprintf(buf, sizeof buf, "%s (%s opcode 0x%x, encoding %s, at byte 0x%x)", name.c_str(),
                encoding_name(in.encoding), in.opcode, words.c_str(), in.pc);
  return buf;
}

}  // namespace lathe::amd::emu
