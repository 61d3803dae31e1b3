// The heuristics' view of a kernel, read from its fragment by the walk the lowering makes for
// the plain loop nest (each node once per context and open loop, constants once), without
// emitting it.
#include "codegen/kernel_profile.h"

#include <algorithm>
#include <set>
#include <string>

namespace lathe {
namespace {

// Operations after a register tile's reductions that keep a C compiler from vectorizing the
// tile's loop: selects, comparisons, maxima, transcendentals, and roundings to a 16-bit float
// (bit operations on each value: a bf16 matmul's epilogue under autocast).
bool keeps_tile_scalar(const Node* n) {
  switch (n->op) {
    case Op::Where: case Op::CmpLt: case Op::CmpNe: case Op::Max: case Op::Exp2: case Op::Log2: case Op::Sin: return true;
    case Op::Cast: return n->dtype == DType::BFloat16 || n->dtype == DType::Float16;
    default: return false;
  }
}

class Profiler {
 public:
  Profiler(Node* value, const InputOf& input_of, KernelProfile& p) : value_(value), input_of_(input_of), p_(p) {}

  void run() {
    const Shape& S = value_->shape;
    Ctx out = variable_element(S);
    for (size_t d = 0; d < S.size(); ++d) {
      p_.axis_var.push_back(S[d] > 1 ? static_cast<int>(d) : -1);
      if (S[d] > 1) open(S[d]);
    }
    next_var_ = static_cast<int>(S.size());
    ReadSites tops = read_sites(value_, input_of_);
    for (auto& [r, ctx] : tops) top_reads_.insert({r, ctx.key()});
    for (auto& [r, ctx] : tops)
      if (std::find(p_.reduces.begin(), p_.reduces.end(), r) == p_.reduces.end()) p_.reduces.push_back(r);
    for (Node* r : p_.reduces) {
      std::vector<Ctx> reads;
      for (auto& [rn, ctx] : tops)
        if (rn == r) reads.push_back(ctx), count(false);  // an accumulator per place it is read
      in_reduce_ = true;
      std::vector<Expr> vars = open_reduce_loops(r);
      p_.innermost_var.push_back(vars.empty() ? -1 : static_cast<int>(vars.back()->value));
      for (auto& ctx : reads) walk(r->src[0].get(), reduce_src_ctx(r, ctx, vars)), count(true);
      for (size_t i = 0; i < vars.size(); ++i) close();
      in_reduce_ = false;
    }
    epilogue_ = !p_.reduces.empty();
    walk(value_, out);
    count(true);  // the store
    while (scopes_.size() > 1) close();  // the output loops
  }

 private:
  void count(bool op) {
    ++p_.body;
    if (op) p_.ops += mult_;
  }
  void open(int64_t extent) {
    count(false);
    scopes_.emplace_back();
    mults_.push_back(mult_);
    mult_ *= extent;
  }
  void close() {
    count(false);
    scopes_.pop_back();
    mult_ = mults_.back();
    mults_.pop_back();
  }
  // Whether `key` was emitted in an open scope; if not it is now, in the innermost one (or the
  // outermost, for constants that hold everywhere).
  bool emitted(const std::string& key, bool everywhere = false) {
    for (auto& s : scopes_)
      if (s.count(key)) return true;
    (everywhere ? scopes_.front() : scopes_.back()).insert(key);
    return false;
  }
  std::vector<Expr> open_reduce_loops(Node* r) {
    std::vector<Expr> vars;
    for (int64_t a : r->arg) {
      const int64_t extent = r->src[0]->shape[a];
      vars.push_back(expr_var(next_var_++, 0, extent - 1));
      open(extent);
    }
    return vars;
  }
  static Ctx reduce_src_ctx(Node* r, const Ctx& c, const std::vector<Expr>& vars) {
    Ctx s = c;
    for (size_t i = 0; i < r->arg.size(); ++i) s.idx[r->arg[i]] = vars[i];
    return s;
  }
  static std::string valid_key(const Ctx& c) {
    std::string k;
    for (auto& b : c.valid) k += "|" + b.e->key + ":" + std::to_string(b.lo) + ":" + std::to_string(b.hi);
    return k;
  }

  void walk(Node* n, const Ctx& c) {
    if (c.never) {
      if (!emitted(std::string("C0:") + std::to_string(static_cast<int>(n->dtype)), true)) count(false);
      return;
    }
    if (emitted(std::string("N") + std::to_string(reinterpret_cast<uintptr_t>(n)) + "@" + c.key())) return;
    if (Buffer* b = input_of_(n)) {
      Expr index = flat_index(c, n->shape);
      if (in_reduce_) p_.loads.push_back(index);
      if (!emitted(std::string("L") + std::to_string(reinterpret_cast<uintptr_t>(b)) + "[" + index->key + "]" + valid_key(c))) count(true);
      return;
    }
    if (n->op == Op::Const) {
      const std::string key = std::string("C") + std::to_string(static_cast<int>(n->dtype)) + ":" + std::to_string(n->fvalue) + "/" +
                              std::to_string(n->ivalue) + valid_key(c);
      if (!emitted(key, c.valid.empty())) count(false);
      return;
    }
    if (n->op == Op::Detach || n->op == Op::Contiguous) return walk(n->src[0].get(), c);
    if (n->op == Op::Reduce) {
      if (top_reads_.count({n, c.key()})) return;  // a top-level reduction's accumulator
      count(false);  // a nested reduction: its accumulator, loops and update, here
      std::vector<Expr> vars = open_reduce_loops(n);
      walk(n->src[0].get(), reduce_src_ctx(n, c, vars));
      count(true);
      for (size_t i = 0; i < vars.size(); ++i) close();
      return;
    }
    if (is_movement(n->op)) return walk(n->src[0].get(), map_ctx(n, c));
    for (auto& s : n->src) walk(s.get(), c);
    count(true);
    if (epilogue_ && keeps_tile_scalar(n)) p_.selecting_epilogue = true;
  }

  Node* value_;
  const InputOf& input_of_;
  KernelProfile& p_;
  std::set<std::pair<Node*, std::string>> top_reads_;
  std::vector<std::set<std::string>> scopes_ = {{}};
  std::vector<int64_t> mults_;
  int64_t mult_ = 1;
  int next_var_ = 0;
  bool in_reduce_ = false, epilogue_ = false;
};

}  // namespace

KernelProfile profile_kernel(Node* value, const InputOf& input_of) {
  KernelProfile p;
  Profiler(value, input_of, p).run();
  return p;
}

}  // namespace lathe
