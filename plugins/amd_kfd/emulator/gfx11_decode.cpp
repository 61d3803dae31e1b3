// The gfx11 encodings (RDNA3's gfx1100): fields by the RDNA3 ISA's microcode formats, operands
// mapped into the gfx9 source space (M0 and NULL swap places) so that the executors are shared.
#include <string>

#include "gcn_decode.h"
#include "lathe/error.h"

namespace lathe::amd::emu {
namespace {

constexpr uint32_t kNull11 = 124, kM011 = 125;

uint16_t scalar_index(uint32_t field) {
  if (field == kNull11) return reg::kNull;
  if (field == kM011) return reg::kM0;
  return static_cast<uint16_t>(field);
}
Operand scalar(uint32_t field) {
  return field == reg::kLiteral ? Operand{Operand::Literal, 0, 0} : Operand{Operand::Scalar, scalar_index(field), 0};
}
Operand source(uint32_t field) {
  if (field >= 256) return {Operand::Vector, static_cast<uint16_t>(field - 256), 0};
  return scalar(field);
}
Operand vgpr(uint32_t index) { return {Operand::Vector, static_cast<uint16_t>(index), 0}; }

// VOP3's carry-writing forms (VOP3SD): the scalar destination sits where VOP3's abs bits are.
bool is_vop3sd(std::string_view n) {
  return n == "v_add_co_u32" || n == "v_sub_co_u32" || n == "v_subrev_co_u32" || n == "v_add_co_ci_u32" || n == "v_sub_co_ci_u32" ||
         n == "v_subrev_co_ci_u32" || n == "v_div_scale_f32" || n == "v_div_scale_f64" || n == "v_mad_u64_u32" || n == "v_mad_i64_i32";
}
bool writes_scalar(std::string_view n) { return n == "v_readlane_b32" || n == "v_readfirstlane_b32"; }

// VOPD's operations, by the ISA's OPX/OPY numbers, as the VOP2/VOP1 instructions they are.
std::string_view dual_name(uint32_t op) {
  static const char* names[] = {"v_fmac_f32", "v_fmaak_f32", "v_fmamk_f32", "v_mul_f32", "v_add_f32", "v_sub_f32", "v_subrev_f32",
                                "v_mul_dx9_zero_f32", "v_mov_b32", "v_cndmask_b32", "v_max_f32", "v_min_f32", "v_dot2acc_f32_f16",
                                "v_dot2acc_f32_bf16", "", "", "v_add_nc_u32", "v_lshlrev_b32", "v_and_b32"};
  return op < sizeof names / sizeof names[0] ? std::string_view(names[op]) : std::string_view();
}

}  // namespace

Inst decode_gfx11(const uint32_t* words, size_t available, uint32_t pc) {
  Inst in;
  in.pc = pc;
  const uint32_t w = words[0];
  in.words[0] = w;
  const Family f = Family::Gfx11;
  auto second = [&]() {
    if (available < 2) throw Error("amd_kfd emulator: instruction at byte " + std::to_string(pc) + " wants a second dword past the code's end");
    in.words[1] = words[1];
    in.size = 2;
    return words[1];
  };
  // A literal follows the instruction's own dwords (one per instruction, shared by its operands).
  auto literal = [&](Operand& o) {
    if (o.kind != Operand::Literal) return;
    const size_t at = in.size;
    if (available <= at) throw Error("amd_kfd emulator: instruction at byte " + std::to_string(pc) + " wants a literal past the code's end");
    o.literal = words[at];
    if (at < 3) in.words[at] = words[at];
    in.size = static_cast<uint8_t>(at + 1);
  };
  if ((w >> 30) == 2) {  // scalar ALU: gfx9's layouts
    scalar_alu_fields(in, w);
    for (Operand* o : {&in.dst, &in.src[0], &in.src[1]})
      if (o->kind == Operand::Scalar) o->index = scalar_index(o->index);
    in.name = opcode_name(f, in.encoding, in.opcode);
    // gfx11 kernels end by releasing their VGPRs early (message 3): a hint, named apart from
    // s_sendmsg's other messages, which are not covered.
    if (in.name == "s_sendmsg" && (in.offset & 0xff) == 3) in.name = "s_sendmsg_dealloc_vgprs";
    if (in.src[0].kind == Operand::Literal) literal(in.src[0]);
    else literal(in.src[1]);
    if (in.src[1].kind == Operand::Literal && in.src[0].kind == Operand::Literal) in.src[1].literal = in.src[0].literal;
    return in;
  }
  if ((w >> 31) == 0) {  // VOP2, VOP1, VOPC: gfx9's layouts; no SDWA
    const uint32_t op6 = (w >> 25) & 0x3f, src0 = w & 0x1ff;
    if (op6 == 0x3f) {
      in.encoding = Encoding::Vop1;
      in.opcode = (w >> 9) & 0xff;
      in.dst = vgpr((w >> 17) & 0xff);
      in.src[0] = source(src0);
    } else if (op6 == 0x3e) {
      in.encoding = Encoding::Vopc;
      in.opcode = (w >> 17) & 0xff;
      in.sdst = scalar(reg::kVccLo);
      in.src[0] = source(src0);
      in.src[1] = vgpr((w >> 9) & 0xff);
    } else {
      in.encoding = Encoding::Vop2;
      in.opcode = static_cast<uint16_t>(op6);
      in.dst = vgpr((w >> 17) & 0xff);
      in.src[0] = source(src0);
      in.src[1] = vgpr((w >> 9) & 0xff);
    }
    in.name = opcode_name(f, in.encoding, in.opcode);
    if (in.name.starts_with("v_cmpx_")) in.sdst = scalar(kNull11);  // gfx11's v_cmpx writes EXEC alone
    if (src0 == 0xe9 || src0 == 0xea || src0 == 0xfa) {  // DPP8 (two forms) or DPP16: a second dword
      second();
      in.dpp = true;
    }
    literal(in.src[0]);
    // v_fmamk_f32 / v_fmaak_f32: the constant K is the literal after the instruction.
    if ((in.name == "v_fmamk_f32" || in.name == "v_fmaak_f32") && in.src[0].kind != Operand::Literal) {
      in.src[2] = {Operand::Literal, 0, 0};
      literal(in.src[2]);
    } else if (in.name == "v_fmamk_f32" || in.name == "v_fmaak_f32") {
      in.src[2] = in.src[0];
    }
    if (writes_scalar(in.name)) in.dst = scalar((w >> 17) & 0xff);
    return in;
  }
  const uint32_t top6 = w >> 26;
  if (top6 == 0x35) {  // VOP3 (and VOP3SD)
    const uint32_t w1 = second();
    in.encoding = Encoding::Vop3;
    in.opcode = (w >> 16) & 0x3ff;
    if (in.opcode < 0x100) in.name = opcode_name(f, Encoding::Vopc, in.opcode);
    else if (in.opcode < 0x140) in.name = opcode_name(f, Encoding::Vop2, in.opcode - 0x100);
    else if (in.opcode >= 0x180 && in.opcode < 0x200) in.name = opcode_name(f, Encoding::Vop1, in.opcode - 0x180);
    if (in.name.empty()) in.name = opcode_name(f, Encoding::Vop3, in.opcode);
    for (int i = 0; i < 3; ++i) in.src[i] = source((w1 >> (9 * i)) & 0x1ff);
    in.omod = (w1 >> 27) & 3;
    in.neg = (w1 >> 29) & 7;
    in.clamp = (w >> 15) & 1;
    if (is_vop3sd(in.name)) {
      in.sdst = scalar((w >> 8) & 0x7f);
    } else {
      in.abs = (w >> 8) & 7;
      in.op_sel = (w >> 11) & 0xf;
    }
    if (in.opcode < 0x100) in.sdst = scalar(in.name.starts_with("v_cmpx_") ? kNull11 : w & 0xff);  // a compare's mask: an SGPR
    else if (writes_scalar(in.name)) in.dst = scalar(w & 0xff);
    else in.dst = vgpr(w & 0xff);
    for (auto& s : in.src) literal(s);
    for (auto& s : in.src)
      if (s.kind == Operand::Literal) s.literal = in.words[2];
    return in;
  }
  if ((w >> 24) == 0xcc) {  // VOP3P
    const uint32_t w1 = second();
    in.encoding = Encoding::Vop3p;
    in.opcode = (w >> 16) & 0x7f;
    in.name = opcode_name(f, Encoding::Vop3p, in.opcode);
    for (int i = 0; i < 3; ++i) in.src[i] = source((w1 >> (9 * i)) & 0x1ff);
    in.dst = vgpr(w & 0xff);
    in.neg = (w1 >> 29) & 7;
    in.neg_hi = (w >> 8) & 7;
    in.op_sel = (w >> 11) & 7;
    in.op_sel_hi = static_cast<uint8_t>(((w1 >> 27) & 3) | (((w >> 14) & 1) << 2));
    in.clamp = (w >> 15) & 1;
    for (auto& s : in.src) literal(s);
    return in;
  }
  if (top6 == 0x32) {  // VOPD: OPX, OPY, and each half's sources and destination
    const uint32_t w1 = second();
    in.encoding = Encoding::Vopd;
    in.opcode = static_cast<uint16_t>(((w >> 22) & 0xf) << 5 | ((w >> 17) & 0x1f));
    in.name = "v_dual";
    auto half = [&](uint32_t op, uint32_t src0, uint32_t vsrc1, uint32_t vdst) {
      Inst h;
      h.encoding = Encoding::Vop2;
      h.pc = pc;
      h.name = dual_name(op);
      h.dst = vgpr(vdst);
      h.src[0] = source(src0);
      h.src[1] = vgpr(vsrc1);
      if (h.name == "v_mov_b32") h.encoding = Encoding::Vop1, h.src[1] = {};  // one source
      return h;
    };
    const uint32_t vdstx = (w1 >> 24) & 0xff, vdsty = (((w1 >> 17) & 0x7f) << 1) | ((vdstx & 1) ^ 1);
    auto pair = std::make_shared<InstPair>();
    pair->x = half((w >> 22) & 0xf, w & 0x1ff, (w >> 9) & 0xff, vdstx);
    pair->y = half((w >> 17) & 0x1f, w1 & 0x1ff, (w1 >> 9) & 0xff, vdsty);
    // One literal serves both halves (a source, or fmaak/fmamk's K).
    for (Inst* h : {&pair->x, &pair->y}) {
      if (h->name == "v_fmaak_f32" || h->name == "v_fmamk_f32") h->src[2] = {Operand::Literal, 0, 0};
      for (auto& s : h->src)
        if (s.kind == Operand::Literal) {
          if (in.size == 2) literal(s);
          s.literal = in.words[2];
        }
      if (h->name.empty()) in.name = "";
    }
    in.dual = pair;
    return in;
  }
  if (top6 == 0x3d) {  // SMEM
    const uint32_t w1 = second();
    in.encoding = Encoding::Smem;
    in.opcode = (w >> 18) & 0xff;
    in.name = opcode_name(f, in.encoding, in.opcode);
    in.src[0] = scalar((w & 0x3f) * 2);  // base address pair
    in.dst = scalar((w >> 6) & 0x7f);
    in.glc = (w >> 14) & 1;
    in.offset = static_cast<int32_t>(w1 << 11) >> 11;  // 21-bit signed
    const uint32_t soffset = (w1 >> 25) & 0x7f;
    if (soffset != kNull11) in.src[1] = scalar(soffset);
    return in;
  }
  if (top6 == 0x36) {  // DS
    const uint32_t w1 = second();
    in.encoding = Encoding::Ds;
    in.opcode = (w >> 18) & 0xff;
    in.name = opcode_name(f, in.encoding, in.opcode);
    in.offset = w & 0xff;
    in.offset1 = (w >> 8) & 0xff;
    in.src[0] = vgpr(w1 & 0xff);
    in.src[1] = vgpr((w1 >> 8) & 0xff);
    in.src[2] = vgpr((w1 >> 16) & 0xff);
    in.dst = vgpr((w1 >> 24) & 0xff);
    if ((w >> 17) & 1) in.name = "";  // GDS
    return in;
  }
  if (top6 == 0x37) {  // FLAT, GLOBAL, SCRATCH
    const uint32_t w1 = second();
    const uint32_t seg = (w >> 16) & 3;
    in.encoding = seg == 0 ? Encoding::Flat : seg == 1 ? Encoding::Scratch : Encoding::Global;
    in.opcode = (w >> 18) & 0x7f;
    in.name = seg == 3 ? std::string_view() : opcode_name(f, in.encoding, in.opcode);
    in.offset = seg == 0 ? static_cast<int32_t>(w & 0xfff) : static_cast<int32_t>(w << 19) >> 19;
    in.glc = (w >> 14) & 1;
    in.src[0] = vgpr(w1 & 0xff);
    in.src[1] = vgpr((w1 >> 8) & 0xff);
    const uint32_t saddr = (w1 >> 16) & 0x7f;
    if (in.encoding != Encoding::Flat && saddr != kNull11 && saddr != 0x7f) in.src[2] = scalar(saddr);
    in.dst = vgpr((w1 >> 24) & 0xff);
    return in;
  }
  in.encoding = Encoding::Unknown;
  in.opcode = static_cast<uint16_t>(top6);
  if (top6 == 0x38) {  // MUBUF: only the cache invalidations kernels issue after a barrier
    second();
    const uint32_t op = (w >> 18) & 0xff;
    in.opcode = static_cast<uint16_t>(op);
    in.name = op == 0x2b ? "buffer_gl0_inv" : op == 0x2c ? "buffer_gl1_inv" : "";
  }
  return in;
}

}  // namespace lathe::amd::emu
