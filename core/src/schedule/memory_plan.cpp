// Memory planning inside one realize: buffers given back after their last reader.
#include "memory_plan.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace lathe {

std::vector<std::vector<Buffer*>> plan_releases(const std::vector<ScheduleItem>& items, const std::vector<Node*>& roots,
                                                const std::vector<std::vector<Buffer*>>& reads) {
  static const bool enabled = [] {
    const char* v = std::getenv("LATHE_MEMORY_PLAN");
    return !(v && std::string(v) == "0");
  }();
  if (!enabled) return std::vector<std::vector<Buffer*>>(items.size());
  // Owners of each unrealized node: edges from other unrealized nodes of this graph, and all
  // owners (shared_ptr use count), read off any edge that reaches it.
  std::unordered_map<Node*, long> internal, owners;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->buffer || !seen.insert(n).second) continue;
    for (auto& s : n->src)
      if (!s->buffer) {
        ++internal[s.get()];
        owners[s.get()] = s.use_count();
        stack.push_back(s.get());
      }
  }
  std::unordered_map<Node*, size_t> item_of;
  for (size_t i = 0; i < items.size(); ++i) item_of[items[i].node] = i;
  // After the realize an item that does not track gradients, has been through a backward pass,
  // or is an ASSIGN drops its sources; every other node keeps them.
  auto keeps_sources = [&](Node* n) {
    return !(item_of.count(n) && (!n->tracks_grad || n->backward_done || n->op == Op::Assign));
  };
  // Survivors: the roots, nodes owned from outside this graph (a tensor, a saved activation),
  // ASSIGNs, and whatever a survivor keeps through its sources.
  std::unordered_set<Node*> survives;
  stack.assign(roots.begin(), roots.end());
  for (Node* n : seen)
    if (n->op == Op::Assign || owners[n] > internal[n]) stack.push_back(n);
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->buffer || !survives.insert(n).second || !keeps_sources(n)) continue;
    for (auto& s : n->src) stack.push_back(s.get());
  }
  // Each dead item's output goes back after the last item that reads it.
  std::unordered_map<Buffer*, size_t> last_read;
  for (size_t j = 0; j < reads.size(); ++j)
    for (Buffer* b : reads[j]) last_read[b] = j;
  std::vector<std::vector<Buffer*>> release(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const ScheduleItem& item = items[i];
    if (survives.count(item.node) || item.node->op == Op::Assign || item.output.use_count() != 1) continue;
    auto it = last_read.find(item.output.get());
    release[it == last_read.end() ? i : std::max(i, it->second)].push_back(item.output.get());
  }
  return release;
}

}  // namespace lathe
