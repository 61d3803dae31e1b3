// The loops form's staged factor: a matmul factor that the inner output loops reuse is copied
// once into a contiguous local array (a packed strip), and the reduction reads it from there.
#include <algorithm>

#include "lathe/error.h"
#include "lowerer.h"

namespace lathe {
namespace {

// A strip lives on the stack of the thread running the kernel; it stays well inside a
// worker's stack and within a core's L2.
constexpr int64_t kMaxPackBytes = 256 * 1024;

}  // namespace

// Precondition: one top-level sum of a float32 product (over any axes, taken as one flat
// index), read at one place; one factor depends on output axes that `order` opens before an
// axis along which only the other factor moves (so the strip is reused there), and its strip fits.
void Lowerer::plan_pack(const LoweringOptions& opt, const std::vector<int64_t>& up, const std::vector<int>& order) {
  pack_ = Pack{};
  if (opt.stage_chunk <= 0 || opt.flatten_outer || !more_values_.empty()) return;
  std::vector<std::pair<Node*, Ctx>> tops = top_reads();
  if (tops.size() != 1) return;
  Node* r = tops[0].first;
  Node* product = r->src[0].get();
  if (r->reduce_op != Op::Add || r->dtype != DType::Float32 || product->op != Op::Mul ||
      product->dtype != DType::Float32 || computes_reduction(product, input_of_) || reduce_length(r) != opt.stage_chunk)
    return;
  const Shape& S = value_->shape;
  std::vector<int> all_axes;
  for (size_t d = 0; d < S.size(); ++d) all_axes.push_back(static_cast<int>(d));
  for (int f = 0; f < 2; ++f) {
    OperandUse use = probe_operand(r, product->src[static_cast<size_t>(f)].get(), all_axes);
    OperandUse other = probe_operand(r, product->src[static_cast<size_t>(1 - f)].get(), all_axes);
    if (!use.ok || !other.ok || use.axes.empty()) continue;
    // The strip pays off only when the other factor moves along an axis this one does not.
    std::vector<int> reuse;
    for (int d : other.axes)
      if (std::find(use.axes.begin(), use.axes.end(), d) == use.axes.end() && S[static_cast<size_t>(d)] / up[static_cast<size_t>(d)] > 1)
        reuse.push_back(d);
    int64_t tile = 1;
    for (int d : use.axes) tile *= up[static_cast<size_t>(d)];
    auto position = [&](int d) {  // loops of one iteration are not opened: as if first
      if (S[static_cast<size_t>(d)] / up[static_cast<size_t>(d)] <= 1) return -1;
      return static_cast<int>(std::find(order.begin(), order.end(), d) - order.begin());
    };
    int last_own = -1, first_reuse = static_cast<int>(order.size());
    for (int d : use.axes) last_own = std::max(last_own, position(d));
    for (int d : reuse) first_reuse = std::min(first_reuse, position(d));
    if (last_own >= first_reuse || tile < 4 || opt.stage_chunk * tile * 4 > kMaxPackBytes) continue;
    pack_ = Pack{r, f, use.axes, tile, -1};
    return;
  }
}

// Called as each output loop opens: once every axis the staged factor depends on is open, copy
// its strip, [reduction step][tile position].
void Lowerer::pack_when_open(const std::vector<bool>& opened, const std::vector<int64_t>& up) {
  if (!pack_.reduce || pack_.array >= 0) return;
  for (int d : pack_.axes)  // plan_pack chose the factor so that a reusing axis is still closed then
    if (!opened[static_cast<size_t>(d)]) return;
  Node* r = pack_.reduce;
  Node* factor = r->src[0]->src[static_cast<size_t>(pack_.factor)].get();
  const int64_t n = reduce_length(r);
  pack_.array = define_local(DType::Float32, n * pack_.tile);
  int kv = new_var("k");
  open_range(kv, n, false);
  Expr k = expr_var(kv, 0, n - 1);
  for (int64_t slot = 0; slot < pack_.tile; ++slot) {
    Ctx out;  // the output element of this tile position; axes not yet open read at 0 (the factor ignores them)
    for (size_t d = 0; d < outer_.size(); ++d) out.idx.push_back(expr_mul(outer_[d], up[d]));
    int64_t rest = slot;
    for (size_t i = pack_.axes.size(); i-- > 0;) {
      int d = pack_.axes[i];
      out.idx[static_cast<size_t>(d)] = expr_add(out.idx[static_cast<size_t>(d)], rest % up[static_cast<size_t>(d)]);
      rest /= up[static_cast<size_t>(d)];
    }
    std::optional<Ctx> rc = reduce_ctx_for(r, out);
    check(rc.has_value(), "lowering: a packed factor lost its reduction");
    local_store(pack_.array, expr_add(expr_mul(k, pack_.tile), slot), lower(factor, reduce_src_ctx(r, *rc, split_reduce_index(r, k))));
  }
  close_range();
}

// The sum read from the strip: each tile register multiplies its strip element by the other
// factor, in the product's operand order.
void Lowerer::reduce_packed(Node* r, Accs& accs, const std::vector<int64_t>& up) {
  Node* other = r->src[0]->src[static_cast<size_t>(1 - pack_.factor)].get();
  const int64_t n = reduce_length(r);
  int kv = new_var("r");
  open_range(kv, n, false, true);
  Expr k = expr_var(kv, 0, n - 1);
  for (auto& [acc, ctx] : accs) {
    const Ctx& out = output_ctx_.at(reduce_key(r, ctx));
    Expr slot = expr_mul(k, pack_.tile);
    int64_t stride = pack_.tile;
    for (int d : pack_.axes) {
      stride /= up[static_cast<size_t>(d)];
      Expr offset = expr_add(out.idx[static_cast<size_t>(d)], expr_mul(expr_mul(outer_[static_cast<size_t>(d)], up[static_cast<size_t>(d)]), -1));
      slot = expr_add(slot, expr_mul(offset, stride));
    }
    int staged = local_load(pack_.array, slot, {}, true);
    int read = lower(other, reduce_src_ctx(r, ctx, split_reduce_index(r, k)));
    std::vector<int> factors = pack_.factor == 0 ? std::vector<int>{staged, read} : std::vector<int>{read, staged};
    int v = emit(Inst{IOp::Alu, DType::Float32, Op::Mul, factors}, true);
    emit(Inst{IOp::AccUpdate, r->dtype, Op::Add, {acc, v}}, false);
  }
  close_range();
}

}  // namespace lathe
