// Generation: prefill the prompt into a key/value cache, then one position per step.
#include "lathe/models/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "lathe/error.h"
#include "lathe/models/data.h"

namespace lathe::models {

int32_t pick_token(const std::vector<float>& logits, const GenerateOptions& o, double draw) {
  check(!logits.empty(), "generate: no logits");
  if (o.temperature <= 0) return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; });
  if (o.top_k > 0 && static_cast<size_t>(o.top_k) < order.size()) order.resize(static_cast<size_t>(o.top_k));
  std::vector<double> p(order.size());
  const double top = logits[static_cast<size_t>(order[0])];
  double total = 0;
  for (size_t i = 0; i < order.size(); ++i) total += p[i] = std::exp((logits[static_cast<size_t>(order[i])] - top) / o.temperature);
  size_t keep = order.size();
  if (o.top_p < 1) {
    double cum = 0;
    for (keep = 0; keep < order.size();)
      if ((cum += p[keep++] / total) >= o.top_p) break;
    total = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  double at = draw * total;
  for (size_t i = 0; i < keep; ++i)
    if ((at -= p[i]) < 0) return order[i];
  return order[keep - 1];
}

std::vector<int32_t> generate(const LlamaModel& model, const std::vector<int32_t>& prompt, const GenerateOptions& o,
                              const std::function<void(int32_t)>& on_token) {
  check(!prompt.empty(), "generate: the prompt has no tokens");
  check(o.max_tokens >= 0, "generate: max_tokens must not be negative");
  for (int32_t id : prompt)
    check(id >= 0 && id < model.config().vocab_size, "generate: prompt token " + std::to_string(id) + " is outside the vocabulary (0 to " +
                                                         std::to_string(model.config().vocab_size - 1) + ")");
  NoGradGuard no_grad;
  // Fixed size: after the prompt, each step runs the kernels the step before it ran.
  KvCache cache(std::min<int64_t>(static_cast<int64_t>(prompt.size()) + std::max<int64_t>(o.max_tokens, 1), model.config().max_position_embeddings));
  SamplerRng rng(o.seed);
  std::vector<int32_t> out;
  Tensor next = Tensor::from_vector(prompt, {1, static_cast<int64_t>(prompt.size())}, DType::Int32, model.device());
  for (int64_t step = 0; step < o.max_tokens; ++step) {
    Tensor logits = model.forward(next, &cache);
    const int64_t t = logits.shape()[1];
    std::vector<float> last = logits.slice(1, t - 1, t).contiguous().to_vector<float>();
    const double draw = static_cast<double>(rng.next() >> 11) * 0x1.0p-53;
    const int32_t id = pick_token(last, o, draw);
    out.push_back(id);
    if (on_token) on_token(id);
    if (o.stop && id == *o.stop) break;
    next = Tensor::from_vector(std::vector<int32_t>{id}, {1, 1}, DType::Int32, model.device());
  }
  return out;
}

}  // namespace lathe::models
