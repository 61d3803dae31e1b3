// The schedule: an unrealized graph cut into kernels and copies (rules in docs/scheduler.md).
#pragma once
#include <memory>
#include <vector>

#include "lathe/buffer.h"
#include "lathe/graph.h"

namespace lathe {

struct ScheduleItem {
  enum class Kind { Kernel, Copy } kind;
  Node* node;                      // the node this item gives a buffer
  Node* value;                     // Kernel: the expression stored; Copy: the source node
  std::shared_ptr<Buffer> output;
};

// Cuts the unrealized graph under `roots` into kernels following the fusion rules. Buffers are
// created but not allocated; nothing runs.
std::vector<ScheduleItem> create_schedule(const std::vector<Node*>& roots);

}  // namespace lathe
