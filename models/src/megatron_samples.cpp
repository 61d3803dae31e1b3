// Megatron-LM's GPT-dataset indices (document, sample, shuffle), built as its GPTDataset builds them.
#include "lathe/models/megatron_samples.h"

#include <cmath>
#include <limits>
#include <span>

#include "lathe/error.h"
#include "lathe/models/numpy_random.h"

namespace lathe::models {

std::vector<DocumentRange> megatron_split(int64_t documents, const std::vector<double>& weights) {
  double sum = 0;
  for (double w : weights) sum += w;
  check(sum > 0, "the split's weights add up to zero");
  std::vector<DocumentRange> out;
  double begin = 0;
  for (double w : weights) {
    const double end = begin + w / sum;
    // nearbyint rounds half to even, as Python's round() does.
    if (end > begin) out.push_back({static_cast<int64_t>(std::nearbyint(begin * static_cast<double>(documents))),
                                    static_cast<int64_t>(std::nearbyint(end * static_cast<double>(documents)))});
    else out.push_back({});
    begin = end;
  }
  return out;
}

namespace {

// Every epoch's documents in a row, shuffled together.
void add_epochs(std::vector<int32_t>& order, const GptSamplePlan& plan, int64_t epochs, NumpyRandomState& rng) {
  const size_t first = order.size();
  for (int64_t e = 0; e < epochs; ++e)
    for (int64_t d = plan.first_document; d < plan.end_document; ++d) order.push_back(static_cast<int32_t>(d));
  rng.shuffle(std::span<int32_t>(order.data() + first, order.size() - first));
}

std::vector<uint32_t> shuffled_range(uint32_t begin, uint32_t end, NumpyRandomState& rng) {
  std::vector<uint32_t> out;
  out.reserve(end - begin);
  for (uint32_t i = begin; i < end; ++i) out.push_back(i);
  rng.shuffle(std::span<uint32_t>(out));
  return out;
}

}  // namespace

GptSampleIndex::GptSampleIndex(const std::vector<int32_t>& sequence_lengths, const GptSamplePlan& plan) : lengths_(&sequence_lengths) {
  check(plan.first_document >= 0 && plan.first_document < plan.end_document &&
            plan.end_document <= static_cast<int64_t>(sequence_lengths.size()),
        "Megatron dataset: the split holds no documents (documents " + std::to_string(plan.first_document) + " to " +
            std::to_string(plan.end_document) + " of " + std::to_string(sequence_lengths.size()) + ")");
  check(plan.seq_len > 1, "Megatron dataset: the sequence length must be above 1");
  int64_t tokens_per_epoch = 0;
  for (int64_t d = plan.first_document; d < plan.end_document; ++d) tokens_per_epoch += sequence_lengths[static_cast<size_t>(d)];
  check(tokens_per_epoch > plan.seq_len, "Megatron dataset: the split holds " + std::to_string(tokens_per_epoch) +
                                             " tokens, fewer than one sample of " + std::to_string(plan.seq_len + 1));
  // Epochs: as many as the wanted samples need (each sample seq_len tokens plus one shared).
  if (plan.num_samples > 0)
    while (epochs_ * tokens_per_epoch < plan.num_samples * plan.seq_len + 1) ++epochs_;
  const int64_t per_epoch = (tokens_per_epoch - 1) / plan.seq_len;
  bool separate_final_epoch = false;
  int64_t samples_before_final = 0;
  if (epochs_ > 1) {
    // A last epoch that is used less than 80% is shuffled apart from the others.
    samples_before_final = ((epochs_ - 1) * tokens_per_epoch - 1) / plan.seq_len;
    separate_final_epoch = plan.num_samples - samples_before_final < static_cast<int64_t>(0.8 * static_cast<double>(per_epoch));
  }
  check(epochs_ * (plan.end_document - plan.first_document) < std::numeric_limits<int32_t>::max(),
        "Megatron dataset: more than 2^31 documents over all epochs");
  NumpyRandomState rng(plan.seed);
  if (separate_final_epoch) {
    add_epochs(documents_, plan, epochs_ - 1, rng);
    add_epochs(documents_, plan, 1, rng);
  } else {
    add_epochs(documents_, plan, epochs_, rng);
  }
  build_samples(plan.seq_len, tokens_per_epoch);
  const int64_t total = static_cast<int64_t>(starts_.size()) - 1;
  check(total < std::numeric_limits<uint32_t>::max() - 1, "Megatron dataset: more than 2^32 samples");
  const auto first = static_cast<uint32_t>(separate_final_epoch ? samples_before_final : total);
  shuffle_ = shuffled_range(0, first, rng);
  if (first < total) {
    std::vector<uint32_t> last = shuffled_range(first, static_cast<uint32_t>(total), rng);
    shuffle_.insert(shuffle_.end(), last.begin(), last.end());
  }
}

// The documents concatenated in their order, cut into samples of seq_len + 1 tokens that overlap
// by one (the last target of a sample is the first input of the next).
void GptSampleIndex::build_samples(int64_t seq_len, int64_t tokens_per_epoch) {
  const std::vector<int32_t>& lengths = *lengths_;
  const int64_t samples = (epochs_ * tokens_per_epoch - 1) / seq_len;
  starts_.reserve(static_cast<size_t>(samples + 1));
  int32_t document = 0;
  int64_t offset = 0;
  starts_.push_back({0, 0});
  while (static_cast<int64_t>(starts_.size()) <= samples) {
    int64_t remaining = seq_len + 1;
    while (remaining != 0) {
      const int64_t length = lengths[static_cast<size_t>(documents_[static_cast<size_t>(document)])] - offset;
      remaining -= length;
      if (remaining <= 0) {
        offset += remaining + length - 1;
        remaining = 0;
      } else if (document + 1 == static_cast<int32_t>(documents_.size())) {
        offset = lengths[static_cast<size_t>(documents_[static_cast<size_t>(document)])] - 1;
        break;
      } else {
        ++document;
        offset = 0;
      }
    }
    starts_.push_back({document, static_cast<int32_t>(offset)});
  }
}

void GptSampleIndex::parts(int64_t k, const std::function<void(int64_t, int64_t, int64_t)>& part) const {
  const uint32_t i = shuffle_[static_cast<size_t>(k)];
  const Position begin = starts_[i], end = starts_[i + 1];
  for (int32_t d = begin.document; d <= end.document; ++d) {
    const int32_t document = documents_[static_cast<size_t>(d)];
    const int64_t first = d == begin.document ? begin.offset : 0;
    const int64_t last = d == end.document ? end.offset + 1 : (*lengths_)[static_cast<size_t>(document)];  // exclusive
    part(document, first, last - first);
  }
}

}  // namespace lathe::models
