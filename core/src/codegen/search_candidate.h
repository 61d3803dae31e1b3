// One candidate of LATHE_SEARCH: lowered with an action list, compiled, run on scratch buffers
// of fixed contents, checked against the heuristics' values, and timed.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "codegen/lowering_cache.h"
#include "codegen/opt.h"
#include "lathe/device.h"

namespace lathe {

struct CandidateResult {
  enum class Status { Timed, NotApplicable, WrongValues } status = Status::NotApplicable;
  double seconds = 0;        // best of three launches, when timed
  double difference = 0;     // largest difference from the reference, relative to its scale
  std::vector<std::vector<uint8_t>> values;  // each output's bytes after one launch
};

// With `reference` (the heuristics' values), a candidate whose values differ beyond float
// rounding of another summation order is WrongValues and not timed.
CandidateResult run_candidate(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* device,
                              const Opts& opts, const std::vector<std::vector<uint8_t>>* reference);

}  // namespace lathe
