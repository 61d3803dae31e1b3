// One wavefront's architectural state while it runs (scalar and vector registers, EXEC, VCC,
// SCC, M0, the program counter), its work-group's LDS, and the memory the dispatch may touch.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gcn_decode.h"
#include "lathe/error.h"

namespace lathe::amd::emu {

// A fault the hardware would raise (a page fault, an illegal instruction): the dispatch stops.
struct Fault : Error {
  using Error::Error;
};

// Global memory as the dispatch sees it: GPU addresses are process addresses, and only those
// inside a live allocation mapped to the GPU may be touched.
class Memory {
 public:
  virtual ~Memory() = default;
  virtual uint8_t* global(uint64_t va, uint64_t bytes) = 0;  // null when [va, va+bytes) is not mapped
};

// What every wave of a dispatch shares.
struct DispatchContext {
  Memory* memory = nullptr;
  bool flush_f32 = false, flush_f64_f16 = false;  // the descriptor's denormal modes (flush when not 3)
};

struct WorkGroup {
  std::vector<uint8_t> lds;  // the dispatch's group segment size; accesses past it read 0 and drop writes
};

constexpr int kMaxLanes = 64;
using Row = uint32_t[kMaxLanes];

struct Wave {
  enum class State : uint8_t { Running, AtBarrier, Done };

  explicit Wave(int lanes) : lanes(lanes), lane_mask(lanes == 64 ? ~uint64_t{0} : (uint64_t{1} << lanes) - 1), v(new Row[512]) {
    std::memset(s, 0, sizeof s);
    for (int i = 0; i <= 64; ++i) s[reg::kZero + i] = static_cast<uint32_t>(i);     // 128-192: 0..64
    for (int i = 1; i <= 16; ++i) s[192 + i] = static_cast<uint32_t>(-i);           // 193-208: -1..-16
    const float floats[] = {0.5f, -0.5f, 1.0f, -1.0f, 2.0f, -2.0f, 4.0f, -4.0f};
    for (int i = 0; i < 8; ++i) std::memcpy(&s[reg::kFloatHalf + i], &floats[i], 4);
    s[reg::kInvTwoPi] = 0x3e22f983;  // 1/(2*pi) as f32
    s[reg::kSharedBase] = kSharedAperture;
    s[reg::kPrivateBase] = kPrivateAperture;
  }
  static constexpr uint32_t kSharedAperture = 0x10000, kPrivateAperture = 0x20000;  // high halves of flat addresses

  const int lanes;
  const uint64_t lane_mask;
  uint32_t s[256];  // the scalar source space (gcn_decode.h): SGPRs, VCC, M0, EXEC, constants
  bool scc = false;
  std::unique_ptr<Row[]> v;  // VGPRs 0-255, AGPRs 256-511
  uint32_t pc = 0;           // instruction index in the program
  State state = State::Running;
  DispatchContext* ctx = nullptr;
  WorkGroup* group = nullptr;

  uint64_t exec() const { return (s[reg::kExecLo] | uint64_t{s[reg::kExecHi]} << 32) & lane_mask; }
  void set_exec(uint64_t m) { write_lanes(reg::kExecLo, m); }
  uint64_t vcc() const { return (s[reg::kVccLo] | uint64_t{s[reg::kVccHi]} << 32) & lane_mask; }
  void set_vcc(uint64_t m) { write_lanes(reg::kVccLo, m); }

  uint32_t read(uint16_t index) const {
    if (index == reg::kVccz) return vcc() == 0;
    if (index == reg::kExecz) return exec() == 0;
    if (index == reg::kScc) return scc;
    return s[index];
  }
  void write(uint16_t index, uint32_t value) {
    if (index < reg::kZero && index != reg::kNull) s[index] = value;
  }
  void write64(uint16_t index, uint64_t value) {
    write(index, static_cast<uint32_t>(value));
    write(static_cast<uint16_t>(index + 1), static_cast<uint32_t>(value >> 32));
  }
  // A lane mask: a register pair in wave64, one register in wave32 (its neighbour keeps its value).
  void write_lanes(uint16_t index, uint64_t mask) {
    if (lanes == 32) write(index, static_cast<uint32_t>(mask));
    else write64(index, mask & lane_mask);
  }
  // A scalar operand's 32-bit value.
  uint32_t value(const Operand& o) const { return o.kind == Operand::Literal ? o.literal : read(o.index); }
  // A 64-bit scalar operand: a register pair, or a constant widened as the ISA says (integers
  // sign-extended, float constants as doubles when `f64`, literals zero-extended or as a
  // double's high half).
  uint64_t value64(const Operand& o, bool f64 = false) const {
    if (o.kind == Operand::Literal) return f64 ? uint64_t{o.literal} << 32 : o.literal;
    uint16_t i = o.index;
    if (i < reg::kZero) return s[i] | uint64_t{s[i + 1]} << 32;
    if (i <= 208) return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(s[i])));
    if (i >= reg::kFloatHalf && i <= reg::kInvTwoPi) {
      if (!f64) return s[i];
      static const double doubles[] = {0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 4.0, -4.0, 0.15915494309189532};
      uint64_t bits;
      std::memcpy(&bits, &doubles[i - reg::kFloatHalf], 8);
      return bits;
    }
    if (i == reg::kSharedBase || i == reg::kPrivateBase) return uint64_t{s[i]} << 32;
    return read(i);
  }
};

}  // namespace lathe::amd::emu
