#include "sibling_groups.h"

#include <set>

#include "lathe/device.h"

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

}  // namespace lathe
