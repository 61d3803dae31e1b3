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
  Store,      // buffer[index] = src[0], only where all `valid` bounds hold (a gate)
  Special,    // var = the work-group id or the work-item's id within its group (GPU backends)
  DefineLocal,  // local array `buffer` of `extent` elements, shared by a work-group
  Barrier,    // every work-item of the group reaches this point; local memory is visible
  // The 32 work-items of a warp multiply a 16x16 by 16x8 tile on a matrix unit (MatrixUnit in
  // device.h, mma.sync's m16n8k16 layout): src[0..3] are this item's accumulators (DefineAcc,
  // float32, updated in place), src[4..7] its fragment of A and src[8..9] of B (uint32
  // registers holding two `dtype` values each, the lower k in the low half).
  Mma,
};

enum class SpecialId : uint8_t { GroupId, LocalId };

struct Inst {
  IOp op;
  DType dtype = DType::Float32;
  Op alu = Op::Add;           // Alu op, or the reduce op of AccUpdate
  std::vector<int> src{};     // registers: indices of earlier instructions
  int var = -1;               // Range: loop variable id
  int64_t extent = 0;         // Range
  bool global = false;        // Range: the outermost loop, split across workers or work-items
  bool reduction = false;     // Range: a loop over reduced indices (accumulators carry across it)
  int64_t unroll = 0;         // Range: unroll by at most this much (0: the compiler decides)
  SpecialId special = SpecialId::GroupId;  // Special: which id `var` holds (extent: how many)
  int buffer = -1;            // Load/Store: parameter index, or local array when `local`
  bool local = false;         // Load/Store: a DefineLocal array rather than a parameter
  Expr index{};               // Load/Store
  std::vector<IndexBound> valid{};  // Load: else reads 0; Store: else skipped
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
  int64_t global_size = 1;          // work-items: extent of the global loop, or groups x local_size
  int64_t local_size = 0;           // work-items per work-group; 0: no work-groups (the driver picks)
  int64_t ops_estimate = 0;         // ALU operations, for scheduling work across threads
};

const char* iop_name(IOp op);
std::string kernel_ir_text(const Kernel& kernel);  // for LATHE_DEBUG=4

}  // namespace lathe
