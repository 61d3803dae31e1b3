// One kernel lowered and compiled as realize would, handed out for timing its launches alone.
#include "codegen/lowering_cache.h"
#include "lathe/error.h"
#include "lathe/runtime.h"
#include "schedule/schedule.h"

namespace lathe {

PreparedKernel prepare_kernel(Node* root) {
  std::vector<ScheduleItem> items = create_schedule({root});
  check(items.size() == 1 && items[0].kind == ScheduleItem::Kind::Kernel, [&] {
    return "prepare_kernel: computing this value takes " + std::to_string(items.size()) +
           " scheduled items, not one kernel; realize its inputs first";
  });
  Node* self = items[0].node;
  auto input_of = [self](Node* n) -> Buffer* { return n == self ? nullptr : n->buffer.get(); };
  Lowered lowered = lower_cached({{items[0].value, items[0].output.get()}}, input_of, self->device);
  PreparedKernel prepared;
  prepared.program = self->device->compile(lowered.entry->kernel);
  prepared.buffers.push_back(items[0].output);
  for (Buffer* b : lowered.params) prepared.handles.push_back(b->handle());
  return prepared;
}

}  // namespace lathe
