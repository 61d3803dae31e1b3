// Memory planning inside one realize: a kernel's output that nothing can read once the realize
// is over (no tensor or surviving graph node refers to its node) gives its device memory back
// right after its last reader in the schedule, so a step's peak holds only what is live.
#pragma once
#include <vector>

#include "lathe/buffer.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"

namespace lathe {

// reads[i]: the buffers item i reads. Returns, per item, the buffers to release after it runs.
std::vector<std::vector<Buffer*>> plan_releases(const std::vector<ScheduleItem>& items, const std::vector<Node*>& roots,
                                                const std::vector<std::vector<Buffer*>>& reads);

}  // namespace lathe
