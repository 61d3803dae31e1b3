// Kernel joins: reductions of one structure, row kernels and epilogues that share one kernel.
#include "sibling_groups.h"

#include <set>

#include "lathe/device.h"
#include "codegen/access.h"
#include "codegen/online_softmax.h"

namespace lathe {

Reads reads_of(Node* value, const std::function<Buffer*(Node*)>& input_of) {
  Reads r;
  std::set<std::pair<Node*, bool>> seen;
  std::vector<std::pair<Node*, bool>> stack = {{value, false}};
  while (!stack.empty()) {
    auto [n, moved] = stack.back();
    stack.pop_back();
    if (!seen.insert({n, moved}).second) continue;
    if (Buffer* b = input_of(n)) {
      r.moved[b] = r.moved[b] || moved;
      continue;
    }
    if (n->op == Op::Reduce) r.reduces = true;
    for (auto& src : n->src) stack.push_back({src.get(), moved || is_movement(n->op) || n->op == Op::Reduce});
  }
  return r;
}

namespace {

// Whether items a and b could be one kernel's outputs: kernels of one device and shape, both
// elementwise, or reductions of one structure. Reductions share kernels only on devices with
// work-groups, whose launches are queued and cost host time. On the cpu backend a launch is a
// function call, and a kernel of several large reductions is one huge C function that GCC
// optimizes worse: the cpu preset's weight gradients took 28.9 ms merged against 17.9 ms apart.
// What an item reads is asked only once the cheap checks pass.
bool may_share(const std::vector<ScheduleItem>& items, size_t a, size_t b, const std::function<const Reads&(size_t)>& reads) {
  const ScheduleItem &x = items[a], &y = items[b];
  if (x.kind != ScheduleItem::Kind::Kernel || y.kind != ScheduleItem::Kind::Kernel || x.node->device != y.node->device ||
      x.value->shape != y.value->shape || reads(a).reduces != reads(b).reduces)
    return false;
  return !reads(a).reduces || (reads(a).structure == reads(b).structure && x.node->device->info().max_local_size > 1);
}

}  // namespace

std::vector<size_t> sibling_groups(const std::vector<ScheduleItem>& items, const std::function<const Reads&(size_t)>& reads,
                                   const Joins& joins) {
  constexpr size_t kMaxMembers = 24;  // eight parameters' updates with their moments
  std::vector<size_t> first(items.size());
  std::vector<bool> paired(items.size(), false), rows(items.size(), false);  // online pairs, row kernels
  for (size_t i = 0; i < items.size(); ++i) {
    first[i] = i;
    if (i == 0 || items[i].kind != ScheduleItem::Kind::Kernel) continue;
    size_t g = first[i - 1];
    if (g == i - 1 && joins.online(g, i)) {
      first[i] = g;
      paired[g] = true;
      continue;
    }
    if (!rows[g] && joins.row(g, i - 1, i)) {
      first[i] = g;
      rows[g] = true;
      continue;
    }
    if (!rows[g] && i - g < kMaxMembers && joins.epilogue(g, i - 1, i)) {
      first[i] = g;
      continue;
    }
    if (paired[g] || rows[g] || i - g >= kMaxMembers || !may_share(items, g, i, reads)) continue;
    bool ok = true;
    for (size_t m = g; m < i && ok; ++m) {
      Buffer* earlier = items[m].output.get();
      auto later = reads(m).moved.find(items[i].output.get());
      ok = earlier != items[i].output.get() && !reads(i).moved.count(earlier) && (later == reads(m).moved.end() || !later->second);
    }
    if (ok) first[i] = g;
  }
  return first;
}

std::vector<size_t> sibling_order(const std::vector<ScheduleItem>& items, const std::function<const Reads&(size_t)>& reads,
                                  const Joins& joins) {
  constexpr size_t kWindow = 48;  // how far back an item looks for a partner
  auto independent = [&](size_t moved, size_t passed) {
    if (items[passed].kind != ScheduleItem::Kind::Kernel) return false;
    Buffer *out = items[moved].output.get(), *other = items[passed].output.get();
    return out != other && !reads(moved).moved.count(other) && !reads(passed).moved.count(out);
  };
  std::vector<size_t> order;
  for (size_t i = 0; i < items.size(); ++i) {
    size_t at = order.size();  // where i goes: after its nearest partner, or last
    if (items[i].kind == ScheduleItem::Kind::Kernel) {
      for (size_t back = 0; back < std::min(kWindow, order.size()); ++back) {
        size_t k = order[order.size() - 1 - back];
        if (joins.online(k, i) || joins.row(k, k, i) || joins.epilogue(k, k, i) || may_share(items, k, i, reads)) {
          at = order.size() - back;
          break;
        }
        if (!independent(i, k)) break;
      }
    }
    order.insert(order.begin() + static_cast<std::ptrdiff_t>(at), i);
  }
  return order;
}

Joins kernel_joins(const std::vector<ScheduleItem>& items, const std::function<const Reads&(size_t)>& reads_at,
                   const InputsFor& input_of_for) {
  // A maximum and the sum after it that reads it through exp2 (a softmax's normalizer) run in
  // one pass on devices with work-groups. (On the cpu backend the pass's running maximum is a
  // serial chain where two passes vectorize.)
  auto online_pair = [&items, reads_at, input_of_for](size_t a, size_t b) {
    const ScheduleItem &x = items[a], &y = items[b];
    if (x.kind != ScheduleItem::Kind::Kernel || y.kind != ScheduleItem::Kind::Kernel || x.value->op != Op::Reduce ||
        x.node->device != y.node->device || x.node->device->info().max_local_size <= 1 || x.value->shape != y.value->shape)
      return false;
    auto input_of = input_of_for({y.node});
    Node* sum = only_top_reduction(y.value, input_of);
    return sum && online_rate(sum, x.value, input_of).has_value();
  };
  // Reductions that a kernel reads along its rows (a norm's or a softmax's statistics) are
  // computed by that kernel, one work-group per row, and stored by it as well.
  auto row_join = [&items, reads_at, input_of_for](size_t a, size_t b, size_t i) {
    const ScheduleItem& y = items[i];
    if (y.kind != ScheduleItem::Kind::Kernel || !y.node->device || y.node->device->info().max_local_size <= 1) return false;
    // What items read is worked out only once the shapes fit: statistics are smaller than rows.
    for (size_t m = a; m <= b; ++m) {
      const ScheduleItem& x = items[m];
      if (x.kind != ScheduleItem::Kind::Kernel || x.value != x.node || x.node->device != y.node->device ||
          numel(x.value->shape) >= numel(y.value->shape))
        return false;
    }
    std::vector<Node*> reductions;
    for (size_t m = a; m <= b; ++m) {
      const ScheduleItem& x = items[m];
      if (!reads_at(m).reduces) return false;
      auto read = reads_at(i).moved.find(x.output.get());
      // Each read along rows (through a broadcast); none reading what the row kernel writes.
      if (read == reads_at(i).moved.end() || !read->second || reads_at(m).moved.count(y.output.get())) return false;
      reductions.push_back(x.node);
    }
    std::vector<Node*> selves = reductions;
    selves.push_back(y.node);
    return row_lanes(y.value, reductions, input_of_for(selves), y.node->device->info()) > 0;
  };
  // An elementwise value that reads reductions of its shape element for element (a gated MLP's
  // silu(gate) * up, its backward) is computed in their kernel from the accumulators.
  auto epilogue_join = [&items, reads_at, input_of_for](size_t a, size_t b, size_t i) {
    const ScheduleItem& y = items[i];
    if (y.kind != ScheduleItem::Kind::Kernel || !y.node->device || y.node->device->info().max_local_size <= 1) return false;
    // What items read is worked out only once the sizes fit.
    for (size_t m = a; m <= b; ++m) {
      const ScheduleItem& x = items[m];
      if (x.kind != ScheduleItem::Kind::Kernel || x.value != x.node || x.node->device != y.node->device ||
          numel(x.value->shape) != numel(y.value->shape))
        return false;
    }
    if (!reads_at(a).reduces || reads_at(i).reduces) return false;
    std::vector<Node*> selves = {y.node}, read;
    for (size_t m = a; m <= b; ++m) {
      const ScheduleItem& x = items[m];
      if (reads_at(m).moved.count(y.output.get())) return false;
      selves.push_back(x.node);
      if (reads_at(i).moved.count(x.output.get())) read.push_back(x.node);
    }
    if (read.empty()) return false;
    for (Node* x : read)
      if (!reads_element_for_element(y.value, x, input_of_for(selves))) return false;
    return true;
  };
  return {online_pair, row_join, epilogue_join};
}

}  // namespace lathe
