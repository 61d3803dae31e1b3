// Internal: lowered kernels cached by the structure of what they compute, so that steady
// training steps build the same graphs over new buffers without lowering them again.
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lathe/device.h"
#include "lathe/graph.h"
#include "lathe/kernel.h"

namespace lathe {

using Outputs = std::vector<std::pair<Node*, Buffer*>>;  // the values one kernel stores, and where

// A lowered fragment, kept for the life of the process: steady training steps find their
// kernels and their compiled programs (the one in-memory program cache) here without rebuilding any.
struct CachedLowering {
  Kernel kernel;
  std::vector<int> param_input;  // for params 1..n: index into Fragment::inputs
  std::string key;               // kernel_ir_text(kernel)
  std::unordered_map<Device*, std::shared_ptr<Program>> programs;  // guarded by lowering_mu()
};

// Guards CachedLowering::programs.
std::mutex& lowering_mu();

struct Lowered {
  CachedLowering* entry = nullptr;
  std::vector<Buffer*> params;  // params[0] is the output
};

// The structure of what `outs` compute, independent of which buffers they read: two values
// with the same structure lower to the same kernel.
std::string structure_key(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of);

// Lowers through a cache keyed by the fragment's structure.
Lowered lower_cached(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* dev);

}  // namespace lathe
