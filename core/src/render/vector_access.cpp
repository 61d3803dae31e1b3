// Runs of four float32 accesses that render as one 128-bit load or store.
#include "lathe/vector_access.h"

#include <algorithm>
#include <map>
#include <string>

namespace lathe {
namespace {

struct Slot {
  IOp op;
  bool local;
  int buffer;
  int block;
  bool operator<(const Slot& o) const {
    return std::tie(op, local, buffer, block) < std::tie(o.op, o.local, o.buffer, o.block);
  }
};

// Moving a load earlier (or a store later) to the run's position is safe when nothing between
// the first and last lane writes (or reads) that memory and no barrier intervenes.
bool hazard_free(const Kernel& k, const VectorRun& run) {
  const Inst& lane = k.insts[run.lanes[0]];
  int lo = *std::min_element(run.lanes.begin(), run.lanes.end());
  int hi = *std::max_element(run.lanes.begin(), run.lanes.end());
  for (int i = lo; i <= hi; ++i) {
    const Inst& in = k.insts[i];
    if (in.op == IOp::Barrier) return false;
    if (std::find(run.lanes.begin(), run.lanes.end(), i) != run.lanes.end()) continue;
    bool same_memory = (in.op == IOp::Load || in.op == IOp::Store) && in.local == lane.local && in.buffer == lane.buffer;
    if (same_memory && (in.op == IOp::Store || lane.op == IOp::Store)) return false;
  }
  return true;
}

// 32-bit elements (128-bit accesses) and 16-bit floats (64-bit ones).
bool vector_dtype(DType d) {
  return d == DType::Float32 || d == DType::Int32 || d == DType::UInt32 || d == DType::BFloat16 || d == DType::Float16;
}

}  // namespace

VectorPlan plan_vector_access(const Kernel& k) {
  VectorPlan plan;
  plan.run_of.assign(k.insts.size(), -1);
  std::vector<int> block(k.insts.size());
  std::vector<int> open = {0};
  int blocks = 1;
  std::map<Slot, std::map<std::string, int>> by_index;
  for (size_t i = 0; i < k.insts.size(); ++i) {
    const Inst& in = k.insts[i];
    if (in.op == IOp::EndRange) open.pop_back();
    block[i] = open.back();
    if (in.op == IOp::Range) open.push_back(blocks++);
    bool candidate = (in.op == IOp::Load || in.op == IOp::Store) && vector_dtype(in.dtype) && in.valid.empty();
    if (candidate) by_index[{in.op, in.local, in.buffer, block[i]}].emplace(in.index->key, static_cast<int>(i));
  }
  for (size_t i = 0; i < k.insts.size(); ++i) {
    const Inst& in = k.insts[i];
    if (plan.run_of[i] >= 0 || (in.op != IOp::Load && in.op != IOp::Store) || !vector_dtype(in.dtype) ||
        !in.valid.empty() || !expr_divisible(in.index, 4))
      continue;
    auto& same = by_index[{in.op, in.local, in.buffer, block[i]}];
    VectorRun run{{static_cast<int>(i), -1, -1, -1}, -1};
    bool whole = true;
    for (int lane = 1; lane < 4 && whole; ++lane) {
      auto it = same.find(expr_add(in.index, lane)->key);
      whole = it != same.end() && plan.run_of[it->second] < 0;
      if (whole) run.lanes[lane] = it->second;
    }
    if (!whole || !hazard_free(k, run)) continue;
    run.at = in.op == IOp::Load ? *std::min_element(run.lanes.begin(), run.lanes.end())
                                : *std::max_element(run.lanes.begin(), run.lanes.end());
    for (int lane : run.lanes) plan.run_of[lane] = static_cast<int>(plan.runs.size());
    plan.runs.push_back(run);
  }
  return plan;
}

}  // namespace lathe
