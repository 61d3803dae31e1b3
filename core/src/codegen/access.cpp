// Element access: index contexts mapped through movement ops, the places where a value reads
// reductions or other nodes, and the join preconditions built on them.
#include "codegen/access.h"

#include <algorithm>
#include <set>

#include "lathe/error.h"

namespace lathe {

std::string Ctx::key() const {
  std::string k;
  for (auto& e : idx) k += e->key + ",";
  for (auto& b : valid) k += "|" + b.e->key + ":" + std::to_string(b.lo) + ":" + std::to_string(b.hi);
  return k + (never ? "!" : "");
}

Ctx map_ctx(const Node* n, const Ctx& c) {
  Ctx out;
  out.valid = c.valid;
  out.never = c.never;
  const Shape& src = n->src[0]->shape;
  const size_t nd = src.size();
  out.idx.resize(nd);
  switch (n->op) {
    case Op::Reshape: {
      Shape sstr = contiguous_strides(src);
      Expr flat = flat_index(c, n->shape);
      for (size_t d = 0; d < nd; ++d) {
        if (src[d] == 1) { out.idx[d] = expr_const(0); continue; }
        Expr e = expr_div(flat, sstr[d]);
        out.idx[d] = d == 0 ? e : expr_mod(e, src[d]);
      }
      break;
    }
    case Op::Permute:
      for (size_t i = 0; i < nd; ++i) out.idx[n->arg[i]] = c.idx[i];
      break;
    case Op::Expand:
      for (size_t d = 0; d < nd; ++d) out.idx[d] = src[d] == 1 ? expr_const(0) : c.idx[d];
      break;
    case Op::Pad:
      for (size_t d = 0; d < nd; ++d) {
        out.idx[d] = expr_add(c.idx[d], -n->arg[2 * d]);
        if (!add_bound(out.valid, {out.idx[d], 0, src[d]})) out.never = true;
      }
      break;
    case Op::Shrink:
      for (size_t d = 0; d < nd; ++d) out.idx[d] = expr_add(c.idx[d], n->arg[2 * d]);
      break;
    case Op::Flip:
      out.idx = c.idx;
      for (int64_t a : n->arg) out.idx[a] = expr_add(expr_mul(c.idx[a], -1), src[a] - 1);
      break;
    default: throw Error("map_ctx: not a movement op");
  }
  return out;
}

Expr flat_index(const Ctx& c, const Shape& shape) {
  Shape strides = contiguous_strides(shape);
  Expr index = expr_const(0);
  for (size_t d = 0; d < strides.size(); ++d) index = expr_add(index, expr_mul(c.idx[d], strides[d]));
  return index;
}

Ctx variable_element(const Shape& shape) {
  Ctx ctx;
  for (size_t d = 0; d < shape.size(); ++d) ctx.idx.push_back(expr_var(static_cast<int>(d), 0, shape[d] - 1));
  return ctx;
}

int64_t reduce_length(const Node* r) {
  int64_t n = 1;
  for (int64_t a : r->arg) n *= r->src[0]->shape[a];
  return n;
}

bool computes_reduction(Node* n, const std::function<Buffer*(Node*)>& input_of) {
  std::vector<Node*> stack = {n};
  std::set<Node*> seen;
  while (!stack.empty()) {
    Node* c = stack.back();
    stack.pop_back();
    if (input_of(c) || !seen.insert(c).second) continue;
    if (c->op == Op::Reduce) return true;
    for (auto& s : c->src) stack.push_back(s.get());
  }
  return false;
}

void collect_reads(Node* n, const Ctx& c, const InputOf& input_of, ReadSites& tops, SeenReads& seen, Node* target) {
  if (c.never || n->op == Op::Const || input_of(n)) return;
  // The graph is a DAG: visit each (node, context) once or shared subgraphs explode.
  if (seen[{n, c.key()}]) return;
  seen[{n, c.key()}] = true;
  if (n == target || (!target && n->op == Op::Reduce)) tops.push_back({n, c});
  if (n == target || n->op == Op::Reduce) return;
  if (is_movement(n->op)) return collect_reads(n->src[0].get(), map_ctx(n, c), input_of, tops, seen, target);
  for (auto& s : n->src) collect_reads(s.get(), c, input_of, tops, seen, target);
}

ReadSites read_sites(Node* value, const InputOf& input_of, Node* target) {
  ReadSites found;
  SeenReads seen;
  collect_reads(value, variable_element(value->shape), input_of, found, seen, target);
  return found;
}

bool reads_element_for_element(Node* value, Node* target, const InputOf& input_of) {
  if (numel(target->shape) != numel(value->shape)) return false;
  ReadSites reads = read_sites(value, input_of, target);
  const std::string element = flat_index(variable_element(value->shape), value->shape)->key;
  for (auto& [n, ctx] : reads)
    if (!ctx.valid.empty() || ctx.never || flat_index(ctx, target->shape)->key != element) return false;
  return !reads.empty();
}

// The largest power of two up to `cap` that divides n and leaves each lane `min_each` items.
int64_t lanes_for(int64_t n, int64_t cap, int64_t min_each) {
  int64_t l = 1;
  while (l * 2 <= cap && n % (l * 2) == 0 && n / (l * 2) >= min_each) l *= 2;
  return l;
}

int64_t row_lanes(Node* value, const std::vector<Node*>& stored, const InputOf& input_of,
                  const DeviceInfo& device) {
  const Shape& S = value->shape;
  if (device.max_local_size <= 1 || S.empty()) return 0;
  const int last = static_cast<int>(S.size()) - 1;
  Buffer probe(nullptr, value->dtype, numel(S));
  ReadSites tops = read_sites(value, input_of);
  if (tops.empty()) return 0;
  // Each lane takes at least eight elements of the row, at most 16 (registers). Kernel times on
  // an H200 with 4 / 8 / 16 at least: softmax 8192x1024 38.8 / 28.0 / 26.2 us, rows of 256
  // (attention 16x6x256x64) 29.8 / 23.7 / 29.8 us; a norm's rows of 384 alike with 4 and 8.
  int64_t lanes = lanes_for(S[last], std::min<int64_t>(256, device.max_local_size), 8);
  // Read once per row: unpadded, and the same all along the last axis.
  auto along_rows = [&](const Ctx& ctx) {
    return ctx.valid.empty() && !ctx.never &&
           std::none_of(ctx.idx.begin(), ctx.idx.end(), [&](const Expr& e) { return expr_depends_on(e, last); });
  };
  // A reduction may read another of them (a softmax's sum reads its maximum), no others.
  std::set<Node*> top_nodes;
  for (auto& t : tops) top_nodes.insert(t.first);
  auto inner_input_of = [&](Node* n) { return top_nodes.count(n) ? &probe : input_of(n); };
  for (auto& [r, ctx] : tops) {
    if (r->dtype != DType::Float32 || (r->reduce_op != Op::Add && r->reduce_op != Op::Max) || !along_rows(ctx) ||
        computes_reduction(r->src[0].get(), inner_input_of))
      return 0;
    while (lanes > 1 && reduce_length(r) % lanes) lanes /= 2;
  }
  for (Node* s : stored) {  // each read along the rows, outside reductions
    ReadSites reads = read_sites(value, input_of, s);
    if (reads.empty() || !std::all_of(reads.begin(), reads.end(), [&](auto& r) { return along_rows(r.second); })) return 0;
  }
  return lanes >= 8 && S[last] / lanes <= 16 ? lanes : 0;
}

}  // namespace lathe
