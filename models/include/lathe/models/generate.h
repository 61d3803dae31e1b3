// Text generation from a Llama model: a prompt's ids extended token by token with a key/value
// cache, greedy or sampled (temperature, top-k, top-p) from a seeded generator.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "lathe/models/llama.h"

namespace lathe::models {

struct GenerateOptions {
  int64_t max_tokens = 64;
  double temperature = 0;  // 0: greedy (the first of equal maxima)
  int64_t top_k = 0;       // 0: all tokens
  double top_p = 1;        // nucleus: the fewest most likely tokens whose probability reaches top_p
  uint64_t seed = 0;
  std::optional<int32_t> stop;  // ends the generation once produced (it is returned too)
};

// The next token from logits over the vocabulary, as `o` says (`draw`: uniform in [0, 1)).
int32_t pick_token(const std::vector<float>& logits, const GenerateOptions& o, double draw);

// The generated ids (the prompt not included); `on_token` sees each as it comes.
std::vector<int32_t> generate(const LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                              const std::function<void(int32_t)>& on_token = nullptr);

}  // namespace lathe::models
