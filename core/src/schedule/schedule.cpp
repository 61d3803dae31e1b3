// The fusion rules. A node gets its own buffer (ends a kernel) when
//   - it is a root of the realize call, CONTIGUOUS, ASSIGN, COPY or the source of a COPY;
//   - it is a REDUCE whose value is not carried straight to one kernel's output: a reduce
//     fuses with its elementwise prologue and epilogue (and permutes, flips, shrinks and
//     reshapes of its result), but a reduce that is broadcast back (EXPAND, PAD), fed to
//     another reduce, or needed by two kernels is stored;
//   - it is a computed value broadcast (EXPAND) inside a reduction's input: otherwise every
//     iteration that sees a copy recomputes it, e.g. once per output column of a matmul;
//   - it is the value of an ASSIGN that reads the target through a movement op (in-place
//     writes would otherwise race with reads of other elements);
//   - it is elementwise, has two or more consumers and already reads three or more stored
//     values of its size (a residual stream: otherwise recomputed by every later kernel).
// Everything else, movement ops included, is inlined into its consumers as index arithmetic.
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "lathe/buffer.h"
#include "lathe/device.h"
#include "lathe/error.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"

namespace lathe {
namespace {

bool reads_through_movement(Node* value, Node* target, const std::unordered_set<Node*>& realize) {
  std::vector<std::pair<Node*, bool>> stack = {{value, false}};
  std::unordered_set<Node*> seen;
  while (!stack.empty()) {
    auto [n, moved] = stack.back();
    stack.pop_back();
    if (n == target || (n->buffer && n->buffer == target->buffer)) {
      if (moved) return true;
      continue;
    }
    if (n->buffer || (n != value && realize.count(n))) continue;
    if (!seen.insert(n).second && !moved) continue;
    for (auto& s : n->src) stack.push_back({s.get(), moved || is_movement(n->op) || n->op == Op::Reduce});
  }
  return false;
}

constexpr int kStoreAfterInputs = 3;

// A short reduction (attention's scores: a dot product of length D per element) whose result
// dwarfs what it reads (B*H*T*T against B*H*T*D twice), that only feeds further reductions and
// that would take at least LATHE_RECOMPUTE_MIB of memory (default 1024) is recomputed inside
// each of them instead of being stored: the T x T matrices never reach memory. Dwarfs means
// at least kRecomputeRatio times the elements of its stored inputs: T >= 4 * (D + D / heads
// per key head). Recomputing costs time (the kernels that read scores each redo the dot
// products; on an H100, 1x8x4096x64 attention ran at 0.03x PyTorch's materializing version),
// so smaller matrices are stored.
constexpr int64_t kShortReduce = 128, kRecomputeRatio = 4;

int64_t recompute_bytes() {
  const char* v = std::getenv("LATHE_RECOMPUTE_MIB");  // read once per schedule: tests change it
  return (v ? std::atoll(v) : 1024) << 20;
}

bool recomputable(Node* r, int64_t min_bytes, const std::unordered_map<Node*, std::vector<Node*>>& consumers,
                  const std::unordered_set<Node*>& realize) {
  int64_t length = 1;
  for (int64_t a : r->arg) length *= r->src[0]->shape[a];
  if (length > kShortReduce || numel(r->shape) * static_cast<int64_t>(itemsize(r->dtype)) < min_bytes) return false;
  // Its inputs: stored values reached through elementwise ops and movement only.
  int64_t read = 0;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack = {r->src[0].get()};
  while (!stack.empty()) {
    Node* c = stack.back();
    stack.pop_back();
    if (!seen.insert(c).second) continue;
    if (c->buffer || realize.count(c)) {
      read += numel(c->shape);
      continue;
    }
    if (c->op == Op::Const) continue;
    if (!is_elementwise(c->op) && !is_movement(c->op) && c->op != Op::Detach) return false;
    for (auto& s : c->src) stack.push_back(s.get());
  }
  if (numel(r->shape) < kRecomputeRatio * std::max<int64_t>(read, 1)) return false;
  // Its uses: through elementwise ops and movement into reductions (at least one) or stored nodes.
  bool into_reduce = false;
  seen.clear();
  stack.assign({r});
  while (!stack.empty()) {
    Node* c = stack.back();
    stack.pop_back();
    if (!seen.insert(c).second) continue;
    auto it = consumers.find(c);
    if (c != r && (realize.count(c) || it == consumers.end())) {
      if (!realize.count(c)) return false;  // unreachable for a graph under realize roots
      continue;
    }
    for (Node* u : it->second) {
      if (u->op == Op::Reduce) into_reduce = true;
      else if (realize.count(u) || is_elementwise(u->op) || is_movement(u->op) || u->op == Op::Detach) stack.push_back(u);
      else return false;
    }
  }
  return into_reduce;
}

// Whether n's inline expression (up to stored nodes) contains one of `recomputed`.
bool reads_recomputed(Node* n, const std::unordered_set<Node*>& recomputed, const std::unordered_set<Node*>& realize) {
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack = {n};
  while (!stack.empty()) {
    Node* c = stack.back();
    stack.pop_back();
    if (!seen.insert(c).second || (c != n && (c->buffer || realize.count(c)))) continue;
    if (recomputed.count(c)) return true;
    for (auto& s : c->src) stack.push_back(s.get());
  }
  return false;
}

// How many distinct stored values of n's size n's inline expression reads (elementwise ops and
// movement, not into reductions), counting up to `enough`.
int full_size_inputs(Node* n, const std::unordered_set<Node*>& realize, int enough) {
  const int64_t size = numel(n->shape);
  std::unordered_set<Node*> seen, inputs;
  std::vector<Node*> stack = {n};
  while (!stack.empty() && static_cast<int>(inputs.size()) < enough) {
    Node* c = stack.back();
    stack.pop_back();
    if (!seen.insert(c).second) continue;
    if (c != n && (c->buffer || realize.count(c))) {
      if (numel(c->shape) == size) inputs.insert(c);
      continue;
    }
    if (c == n || is_elementwise(c->op) || is_movement(c->op))
      for (auto& s : c->src) stack.push_back(s.get());
  }
  return static_cast<int>(inputs.size());
}

// The first node with several consumers on the single-consumer chain from reduce r through
// elementwise ops and reshapes of r's size, when it is elementwise and r's device has
// work-groups; else null.
template <class Passes>
Node* shared_elementwise_consumer(Node* r, std::unordered_map<Node*, std::vector<Node*>>& consumers,
                                  const std::unordered_set<Node*>& realize, const Passes& passes) {
  if (!r->device || r->device->info().max_local_size <= 1) return nullptr;
  Node* cur = r;
  while (consumers[cur].size() == 1) {
    Node* next = consumers[cur][0];
    if (realize.count(next) || !passes(cur, next) || numel(next->shape) != numel(r->shape)) return nullptr;
    cur = next;
  }
  return cur != r && consumers[cur].size() > 1 && is_elementwise(cur->op) ? cur : nullptr;
}

}  // namespace

std::vector<ScheduleItem> create_schedule(const std::vector<Node*>& roots) {
  std::vector<Node*> order = toposort(roots, false);
  std::unordered_map<Node*, std::vector<Node*>> consumers;
  for (Node* n : order)
    if (!n->buffer)
      for (auto& s : n->src) consumers[s.get()].push_back(n);

  std::unordered_set<Node*> realize;
  for (Node* r : roots)
    if (!r->buffer) realize.insert(r);
  for (Node* n : order) {
    if (n->buffer) continue;
    if (n->op == Op::Contiguous || n->op == Op::Assign || n->op == Op::Copy) realize.insert(n);
    if (n->op == Op::Copy && !n->src[0]->buffer) realize.insert(n->src[0].get());
    if (n->op == Op::Assign && !n->src[0]->buffer) realize.insert(n->src[0].get());
    if (n->op == Op::Buffer && !n->buffer) throw Error("schedule: a BUFFER node has no buffer");
  }
  // A reduce stays inside its consumer's kernel when every path from it reaches one and the
  // same stored node through elementwise ops and size-preserving reshapes only.
  auto passes = [](Node* from, Node* to) {
    if (to->op == Op::Assign) return to->src[1].get() == from;
    // Movement that maps each output element to one reduced element needs no stored copy.
    return is_elementwise(to->op) || to->op == Op::Detach || to->op == Op::Contiguous ||
           to->op == Op::Permute || to->op == Op::Flip || to->op == Op::Shrink ||
           (to->op == Op::Reshape && numel(to->shape) == numel(from->shape));
  };
  std::unordered_set<Node*> recomputed;
  const int64_t min_recompute_bytes = recompute_bytes();
  for (Node* n : order)
    if (!n->buffer && n->op == Op::Reduce && !realize.count(n) && recomputable(n, min_recompute_bytes, consumers, realize))
      recomputed.insert(n);
  for (Node* n : order) {
    if (n->buffer || n->op != Op::Reduce || realize.count(n) || recomputed.count(n)) continue;
    std::unordered_set<Node*> ends, seen;
    std::vector<Node*> stack = {n};
    bool fuse = true;
    while (fuse && !stack.empty()) {
      Node* cur = stack.back();
      stack.pop_back();
      if (cur != n && realize.count(cur)) {
        ends.insert(cur);
        continue;
      }
      if (!seen.insert(cur).second) continue;
      if (consumers[cur].empty()) fuse = false;
      for (Node* c : consumers[cur]) {
        if (!passes(cur, c)) fuse = false;
        stack.push_back(c);
      }
    }
    if (fuse && ends.size() == 1) continue;
    // On devices with work-groups, a reduce that reaches several kernels only through one
    // elementwise value (a gradient summed from several matmuls, read twice by a norm's
    // backward) stores that value instead, computed by one kernel with the reduces inside: the
    // input gradients of the q, k and v projections are one launch, not three and a sum
    // (gpu preset on the H100: 280 -> 250 launches a step, 377k -> 385k tokens/s).
    if (Node* join = shared_elementwise_consumer(n, consumers, realize, passes)) {
      realize.insert(join);
      continue;
    }
    realize.insert(n);
  }
  // A computed value broadcast (EXPAND) inside a reduction would be recomputed for every
  // step of the reduction loop that sees it, e.g. once per output column of a matmul. Such
  // values are stored once instead.
  for (Node* r : order) {
    if (r->buffer || r->op != Op::Reduce) continue;
    std::vector<Node*> stack = {r->src[0].get()};
    std::unordered_set<Node*> seen;
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      if (n->buffer || realize.count(n) || n->op == Op::Reduce || !seen.insert(n).second) continue;
      if (n->op == Op::Expand && numel(n->shape) != numel(n->src[0]->shape)) {
        // DETACH only cuts gradients: a detached stored value (a parameter, a softmax's
        // maximum) is read where it is, not copied.
        Node* s = n->src[0].get();
        while ((is_movement(s->op) || s->op == Op::Detach) && !s->buffer && !realize.count(s)) s = s->src[0].get();
        // Except a value built on a recomputed reduction: storing it would store the matrix
        // that recomputing avoids; the kernel computes it once per register tile instead.
        if (!s->buffer && !realize.count(s) && is_elementwise(s->op) && !reads_recomputed(s, recomputed, realize)) {
          realize.insert(s);
          continue;
        }
      }
      for (auto& src : n->src) stack.push_back(src.get());
    }
  }
  // An elementwise value read by two consumers that already sums up several full-size stored
  // inputs is stored once: otherwise a chain of them (a residual stream, its gradient) is
  // recomputed by every kernel that reads it, each layer's kernels reading one more buffer and
  // each being a new program to compile.
  for (Node* n : order)
    if (!n->buffer && !realize.count(n) && is_elementwise(n->op) && consumers[n].size() >= 2 &&
        full_size_inputs(n, realize, kStoreAfterInputs) >= kStoreAfterInputs)
      realize.insert(n);
  for (Node* n : order)
    if (n->op == Op::Assign && !n->buffer && reads_through_movement(n->src[1].get(), n->src[0].get(), realize))
      realize.insert(n->src[1].get());

  std::vector<ScheduleItem> items;
  std::unordered_map<Node*, std::shared_ptr<Buffer>> made;
  for (Node* n : order) {
    if (n->buffer || !realize.count(n)) continue;
    ScheduleItem item{ScheduleItem::Kind::Kernel, n, n, nullptr};
    if (n->op == Op::Assign) {
      Node* target = n->src[0].get();
      item.output = target->buffer ? target->buffer : made.at(target);
      item.value = n->src[1].get();
    } else {
      item.output = std::make_shared<Buffer>(n->device, n->dtype, numel(n->shape));
      if (n->op == Op::Contiguous || n->op == Op::Detach) item.value = n->src[0].get();
      if (n->op == Op::Copy) {
        item.kind = ScheduleItem::Kind::Copy;
        item.value = n->src[0].get();
      }
    }
    made[n] = item.output;
    items.push_back(item);
  }
  return items;
}

}  // namespace lathe
