// Decoding a kernel once and binding its instructions: executors by mnemonic, branch targets
// by byte offset; what cannot run becomes a fault that names the instruction.
#include "gcn_program.h"

#include <algorithm>
#include <map>

#include "gcn_wave.h"

namespace lathe::amd::emu {
namespace {

void unknown(Wave&, const Inst& in) { throw Fault("the emulator cannot decode " + describe(in)); }
void uncovered(Wave&, const Inst& in) {
  throw Fault("the emulator does not cover " + describe(in) + (in.dpp ? " with DPP" : "") + " (docs/amd_emulator.md lists what it covers)");
}
void bad_branch(Wave&, const Inst& in) { throw Fault(describe(in) + " branches outside the kernel's code or into an instruction"); }

// VOPD: both halves read their sources before either writes. X runs first; where Y reads X's
// destination, it reads a copy of the old value taken before X ran.
void dual(Wave& w, const Inst& in) {
  if (in.dual->y_reads_x) std::memcpy(w.v[reg::kDualCopy], w.v[in.dual->x.dst.index], sizeof(Row));
  in.dual->x.exec(w, in.dual->x);
  in.dual->y.exec(w, in.dual->y);
}

bool is_branch(const Inst& in) {
  return in.encoding == Encoding::Sopp && (in.name == "s_branch" || in.name.starts_with("s_cbranch_"));
}

void bind_dual(Inst& in, const OpTable& table) {
  in.exec = dual;
  for (Inst* half : {&in.dual->x, &in.dual->y}) {
    auto it = table.find(half->name);
    if (it == table.end()) {
      in.exec = uncovered;
      return;
    }
    half->exec = it->second;
  }
  const Inst& x = in.dual->x;
  for (Operand& s : in.dual->y.src)
    if (s.is_vector() && s.index == x.dst.index) s.index = reg::kDualCopy, in.dual->y_reads_x = true;
}

}  // namespace

const OpTable& op_table() {
  static const OpTable table = [] {
    OpTable t;
    add_scalar_ops(t);
    add_vector_int_ops(t);
    add_vector_float_ops(t);
    add_compare_ops(t);
    add_memory_ops(t);
    add_packed_ops(t);
    add_matrix_ops(t);
    add_gfx11_ops(t);
    return t;
  }();
  return table;
}

std::vector<std::string_view> covered_mnemonics() {
  std::vector<std::string_view> names;
  for (auto& [name, handler] : op_table()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Program load_program(Family family, const uint8_t* code, size_t bytes, const std::string& kernel) {
  Program p;
  p.kernel = kernel;
  p.family = family;
  std::vector<uint32_t> words(bytes / 4);
  std::memcpy(words.data(), code, words.size() * 4);
  std::map<uint32_t, uint32_t> index_of;  // byte offset -> instruction index
  for (size_t at = 0; at < words.size();) {
    Inst in = decode(family, words.data() + at, words.size() - at, static_cast<uint32_t>(at * 4));
    index_of[in.pc] = static_cast<uint32_t>(p.insts.size());
    at += in.size;
    p.insts.push_back(in);
  }
  const OpTable& table = op_table();
  for (Inst& in : p.insts) {
    auto it = in.name.empty() ? table.end() : table.find(in.name);
    if (in.name.empty()) in.exec = unknown;
    else if (in.encoding == Encoding::Vopd) bind_dual(in, table);
    else if (it == table.end() || in.dpp) in.exec = uncovered;
    else in.exec = it->second;
    if (is_branch(in) && in.exec != uncovered) {
      const int64_t target = int64_t{in.pc} + 4 + int64_t{in.offset} * 4;
      auto t = target >= 0 ? index_of.find(static_cast<uint32_t>(target)) : index_of.end();
      if (t == index_of.end()) in.exec = bad_branch;
      else in.target = t->second;
    }
  }
  return p;
}

}  // namespace lathe::amd::emu
