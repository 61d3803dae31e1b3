// A kernel's machine code decoded once and bound to executors: each instruction knows the
// function that runs it, and each branch the index of its target.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gcn_decode.h"

namespace lathe::amd::emu {

struct Program {
  std::string kernel;
  Family family = Family::Gfx9;
  std::vector<Inst> insts;
};

// Decodes `bytes` of machine code from the kernel's entry to the end of its symbol.
Program load_program(Family family, const uint8_t* code, size_t bytes, const std::string& kernel);

// Executors by mnemonic; each file of executors adds its own.
using OpTable = std::unordered_map<std::string_view, Handler>;
void add_scalar_ops(OpTable& ops);
void add_vector_int_ops(OpTable& ops);
void add_vector_float_ops(OpTable& ops);
void add_compare_ops(OpTable& ops);
void add_memory_ops(OpTable& ops);
void add_packed_ops(OpTable& ops);
void add_matrix_ops(OpTable& ops);
void add_gfx11_ops(OpTable& ops);  // after the others: gfx11's names for their executors
const OpTable& op_table();

// Every mnemonic that has an executor, sorted (for the documentation's list and tests).
std::vector<std::string_view> covered_mnemonics();

}  // namespace lathe::amd::emu
