// LATHE_SEARCH=N: instead of taking the heuristics' options for a new kernel, time real
// launches of candidate option sets on scratch buffers and keep the fastest. A beam of width
// N starts at the heuristics' choice and explores single changes (tile factors, work-group
// shape, staging chunk, reduction lanes) for two rounds. Winners are cached on disk by the
// kernel's structure and the device, so a second run starts fast.
#pragma once
#include <functional>
#include <string>

#include "lathe/device.h"
#include "lathe/lower.h"

namespace lathe {

int search_width();  // LATHE_SEARCH, 0 when unset

// `key` identifies the kernel's structure (the lowering cache's fragment signature).
LoweringOptions search_options(Node* value, Buffer* output, const std::function<Buffer*(Node*)>& input_of, Device* device,
                               const std::string& key, const LoweringOptions& heuristic, int width = search_width());

// Text form of options for the cache file and logs, and back.
std::string options_text(const LoweringOptions& o);
bool parse_options(const std::string& text, LoweringOptions& o);

}  // namespace lathe
