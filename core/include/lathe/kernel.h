// The kernel IR: a linear list of instructions (loops, loads, ALU ops, accumulators, stores)
// over symbolic index expressions. Backends render it; they never see the graph.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "lathe/dtype.h"
#include "lathe/graph.h"
#include "lathe/symbolic.h"

namespace lathe {

enum class IOp : uint8_t {
  Range,      // for (var = 0; var < extent; ++var) {  — `global` marks the parallel outer loop
  EndRange,   // }
  Const,      // value of dtype
  Load,       // buffer[index] where all `valid` bounds hold, else 0
  Alu,        // alu op over src registers (unary, binary, Where, Cast, Bitcast)
  DefineAcc,  // a mutable accumulator initialised to value
  AccUpdate,  // acc = reduce_op(acc, src[1]); src[0] is the DefineAcc
  Store,      // buffer[index] = src[0]
};

struct Inst {
  IOp op;
  DType dtype = DType::Float32;
  Op alu = Op::Add;           // Alu op, or the reduce op of AccUpdate
  std::vector<int> src;       // registers: indices of earlier instructions
  int var = -1;               // Range: loop variable id
  int64_t extent = 0;         // Range
  bool global = false;        // Range: the outermost loop, split across workers or work-items
  int buffer = -1;            // Load/Store: parameter index
  Expr index;                 // Load/Store
  std::vector<IndexBound> valid;  // Load
  double fvalue = 0;          // Const/DefineAcc of float type
  int64_t ivalue = 0;         // Const/DefineAcc of integer type
};

struct KernelParam {
  DType dtype;
  int64_t numel;
  bool written;
};

struct Kernel {
  std::string name;                // e.g. r_64_128_32: kind and loop extents
  std::vector<KernelParam> params;  // params[0] is the output
  std::vector<Inst> insts;
  std::vector<std::string> var_names;
  int64_t global_size = 1;          // extent of the global loop (1 when there is none)
  int64_t ops_estimate = 0;         // ALU operations, for scheduling work across threads
};

const char* iop_name(IOp op);
std::string kernel_ir_text(const Kernel& kernel);  // for LATHE_DEBUG=4

}  // namespace lathe
