// AMDGPU machine code decoded into instructions with their operands resolved: the encodings
// (gfx9 for CDNA3's gfx942, gfx11 for RDNA3's gfx1100), mapped into one operand space so
// that the executors are shared between the targets.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lathe::amd::emu {

// Vopd: gfx11's dual issue, two VOP2-like operations in one instruction (executed X, then Y).
enum class Encoding : uint8_t { Sop2, Sopk, Sop1, Sopc, Sopp, Smem, Vop2, Vop1, Vopc, Vop3, Vop3p, Ds, Flat, Global, Scratch, Vopd, Unknown };
const char* encoding_name(Encoding e);

// The scalar source space (gfx9 numbering; gfx11's is mapped onto it): SGPRs, special
// registers and inline constants share one 8-bit index.
namespace reg {
constexpr uint16_t kSgprs = 106, kVccLo = 106, kVccHi = 107, kM0 = 124, kNull = 125, kExecLo = 126, kExecHi = 127;
constexpr uint16_t kZero = 128, kSharedBase = 235, kPrivateBase = 237;
constexpr uint16_t kFloatHalf = 240, kInvTwoPi = 248, kVccz = 251, kExecz = 252, kScc = 253, kLiteral = 255;
constexpr uint16_t kAgprBase = 256;  // vector operands: VGPRs 0-255, AGPRs 256-511
constexpr uint16_t kDualCopy = 511;  // gfx11 (no AGPRs): where VOPD keeps a source its other half overwrites
}  // namespace reg

struct Operand {
  enum Kind : uint8_t { None, Scalar, Vector, Literal } kind = None;
  uint16_t index = 0;    // Scalar: the source space above; Vector: 0-511
  uint32_t literal = 0;  // Literal: the 32-bit constant that followed the instruction
  bool is_vector() const { return kind == Vector; }
};

// Sub-dword addressing of VOP1/VOP2/VOPC (gfx9): which byte or word of each source is used
// (0-3 bytes, 4-5 words, 6 the whole dword), and what happens to the destination's other bits.
struct Sdwa {
  bool on = false;
  uint8_t sel[2] = {6, 6}, dst_sel = 6, dst_unused = 0;  // dst_unused: 0 zero, 1 sign-extend, 2 preserve
  bool sext[2] = {false, false};
};

struct Wave;
struct Inst;
using Handler = void (*)(Wave&, const Inst&);

struct Inst {
  Encoding encoding = Encoding::Unknown;
  uint16_t opcode = 0;
  std::string_view name;  // llvm's mnemonic without _e32/_e64/_sdwa; "" when the opcode is unknown
  uint8_t size = 1;       // dwords, literal included
  uint32_t pc = 0;        // byte offset from the kernel's entry
  uint32_t words[3] = {0, 0, 0};
  Operand dst, sdst, src[3];  // sdst: VOP3b's carry or VOPC's mask destination; VCC when absent
  uint8_t abs = 0, neg = 0, neg_hi = 0, op_sel = 0, op_sel_hi = 0, omod = 0;  // bit i for source i
  bool clamp = false, glc = false;
  Sdwa sdwa;
  int32_t offset = 0;   // SOPK/SOPP simm16, SMEM/FLAT byte offset, DS offset0
  uint8_t offset1 = 0;  // DS offset1
  bool dpp = false;     // a DPP word followed (not executed: refused with the opcode's name)
  bool broadcast = false;  // MFMA: CBSZ, ABID or BLGP set (operand broadcasts, refused when executed)
  // VOPD: the two halves, each an instruction of its own (VOP2/VOP1 names).
  std::shared_ptr<struct InstPair> dual;
  // Filled when the program is bound: the executor and, for branches, the target's index.
  Handler exec = nullptr;
  uint32_t target = 0;
};
struct InstPair {
  Inst x, y;
  bool y_reads_x = false;  // Y reads X's destination: it reads a copy of the old value (kDualCopy)
};

struct OpcodeList {
  Encoding encoding;
  const char* names;  // "op:name op:name ...", op in hex
};
const std::vector<OpcodeList>& gfx9_opcodes();
const std::vector<OpcodeList>& gfx11_opcodes();

enum class Family : uint8_t { Gfx9, Gfx11 };
// gfx90a/gfx942 -> Gfx9, gfx1100-gfx1103 -> Gfx11; an Error for targets not covered.
Family family_of(const std::string& target);
// The mnemonic of an opcode of an encoding ("" when the table has none).
std::string_view opcode_name(Family family, Encoding encoding, uint16_t opcode);

// Decodes the instruction at words[0] (at most `available` dwords may be read).
Inst decode(Family family, const uint32_t* words, size_t available, uint32_t pc);
Inst decode_gfx11(const uint32_t* words, size_t available, uint32_t pc);  // gfx11_decode.cpp
// SOP1/SOPC/SOPP/SOPK/SOP2 (one layout in gfx9 and gfx11): encoding, opcode and register fields
// in gfx9's numbering; literals are left to the caller.
void scalar_alu_fields(Inst& in, uint32_t w);

// "v_add_f32 (VOP2 opcode 0x1, encoding 0x02020502)": what error messages say of an instruction.
std::string describe(const Inst& inst);

}  // namespace lathe::amd::emu
