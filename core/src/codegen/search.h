// LATHE_SEARCH=N: instead of taking the heuristics' actions for a new kernel, time real
// launches of candidate action lists (opt.h) on scratch buffers and keep the fastest. A beam of
// width N starts at the heuristics' list and explores single changes (an amount doubled or
// halved, an action dropped or added) for two rounds, for kernels of one output or several.
// Every candidate runs on the same scratch contents first; one whose values differ from the
// heuristics' is reported and never chosen.
// Winners are cached on disk, as action lists, by the kernel's structure and the device.
#pragma once
#include <functional>
#include <string>

#include "lathe/device.h"
#include "codegen/lower.h"
#include "lowering_cache.h"
#include "opt.h"

namespace lathe {

int search_width();  // LATHE_SEARCH, 0 when unset

// `key` identifies the kernel's structure (the lowering cache's fragment signature).
Opts search_opts(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* device, const std::string& key,
                 const Opts& heuristic, int width = search_width());

}  // namespace lathe
