// The optimization vocabulary: every choice of how a kernel maps onto a device is one action
// {kind, axis, amount}. Heuristics emit a list, LATHE_SEARCH varies lists, the search cache
// stores them, LATHE_DEBUG=2 prints them, and apply_opts turns a list into the lowerer's
// settings after checking each action's precondition.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "codegen/lower.h"

namespace lathe {

enum class OptKind : uint8_t {
  Upcast,       // axis: compute `amount` consecutive outputs per iteration (a register tile)
  Local,        // axis: `amount` work-items of a group share it (work-group devices)
  GroupReduce,  // `amount` lanes of a group split every reduction, combined in local memory
  SplitReduce,  // `amount` partial accumulators per lane (independent chains, then a tree)
  Stage,        // reductions of a product read factors staged in local memory, `amount` steps at a time
  Outer,        // axis: its loop is the outermost (the parallel one on loop devices)
  Reload,       // a register tile's sums are stored, then its epilogue reads them back (loop devices)
  Rows,         // a row kernel: the reduction lanes go on to compute the row (with GroupReduce)
  MatrixUnit,   // axis: the matrix unit's rows, amount: the axis of its columns; the device's unit
                // computes the staged matmul (with Stage; Upcast counts fragments, Local warps)
};

struct Opt {
  OptKind kind;
  int axis = -1;  // output axis, -1 for kinds that take none
  int64_t amount = 1;
  bool operator==(const Opt& o) const { return kind == o.kind && axis == o.axis && amount == o.amount; }
};
using Opts = std::vector<Opt>;

const char* opt_kind_name(OptKind kind);
bool opt_takes_axis(OptKind kind);

// "upcast(1,32) outer(1) upcast(0,8) stage(1024)"; parse_opts is its inverse (nullopt on
// anything else).
std::string opts_text(const Opts& opts);
std::optional<Opts> parse_opts(const std::string& text);

// The lowerer's settings for a kernel of `rank` output axes on a device that runs every
// output loop in parallel (`flatten`) or not. Throws an Error naming the action whose
// precondition fails (an axis out of range, a repeated kind or axis, a zero amount, a
// work-group action on a loop device, Rows without GroupReduce).
LoweringOptions apply_opts(const Opts& opts, size_t rank, bool flatten, bool work_groups,
                           const std::vector<MatrixUnit>& units = {});

// The same for a kernel whose first value is `value` on `device`.
LoweringOptions apply_opts(const Opts& opts, const Node* value, const DeviceInfo& device);

// The heuristics' actions for a kernel on the device, from its profile and the device's
// table (heuristics.cpp); they do not lower the kernel.
Opts heuristic_opts(Node* value, const std::function<Buffer*(Node*)>& input_of, const DeviceInfo& device);

}  // namespace lathe
