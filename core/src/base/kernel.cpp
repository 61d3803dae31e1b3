// Kernel IR: the text form of a kernel (for logs, tests and the lowering cache key).
#include "lathe/kernel.h"

#include <sstream>

namespace lathe {

const char* iop_name(IOp op) {
  static const char* names[] = {"RANGE", "ENDRANGE", "CONST", "LOAD", "ALU", "DEFINE_ACC", "ACC_UPDATE", "STORE", "SPECIAL",
                                "DEFINE_LOCAL", "BARRIER", "MMA"};
  return names[static_cast<int>(op)];
}

std::string kernel_ir_text(const Kernel& k) {
  std::ostringstream out;
  out << k.name << " (" << k.params.size() << " buffers, global " << k.global_size << ", local " << k.local_size << ")\n";
  for (size_t i = 0; i < k.insts.size(); ++i) {
    const Inst& in = k.insts[i];
    out << "  %" << i << " " << iop_name(in.op) << " " << dtype_name(in.dtype);
    if (in.op == IOp::Alu || in.op == IOp::AccUpdate) out << " " << op_name(in.alu);
    for (int s : in.src) out << " %" << s;
    if (in.op == IOp::Range) out << " " << k.var_names[in.var] << " < " << in.extent << (in.global ? " global" : "") << (in.reduction ? " reduce" : "") << (in.unroll ? " unroll " + std::to_string(in.unroll) : "");
    // Exact values: this text is also the key of the compiled-program cache.
    if (in.op == IOp::Const || in.op == IOp::DefineAcc) {
      if (is_float(in.dtype)) out << " " << std::hexfloat << in.fvalue << std::defaultfloat;
      else out << " " << in.ivalue;
    }
    if (in.op == IOp::Const)
      for (auto& b : in.valid) out << " if " << b.lo << "<=" << render_expr(b.e, k.var_names) << "<" << b.hi;
    if (in.op == IOp::Special)
      out << " " << k.var_names[in.var] << (in.special == SpecialId::GroupId ? " group" : " local") << " < " << in.extent;
    if (in.op == IOp::DefineLocal) out << " l" << in.buffer << "[" << in.extent << "]";
    if (in.op == IOp::Mma) out << " acc " << in.ivalue << " a " << in.extent;
    if (in.op == IOp::Load || in.op == IOp::Store) {
      out << (in.local ? " l" : " b") << in.buffer << "[" << render_expr(in.index, k.var_names) << "]";
      for (auto& b : in.valid) out << " if " << b.lo << "<=" << render_expr(b.e, k.var_names) << "<" << b.hi;
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace lathe
