// Megatron-LM's GPT-dataset order: the documents, sample and shuffle indices it builds from a seed,
// so that sample k of a run holds the tokens Megatron's sample k holds.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace lathe::models {

struct GptSamplePlan {
  int64_t first_document = 0, end_document = 0;  // the split: documents [first, end) of the dataset
  int64_t seq_len = 0;                           // a sample holds seq_len + 1 tokens
  int64_t num_samples = 0;                       // samples wanted (more epochs when needed); 0: one epoch
  uint32_t seed = 0;
};

class GptSampleIndex {
 public:
  // sequence_lengths: the tokens of each document of the dataset (Megatron's sequences); it must
  // outlive the index.
  GptSampleIndex(const std::vector<int32_t>& sequence_lengths, const GptSamplePlan& plan);
  int64_t size() const { return static_cast<int64_t>(shuffle_.size()); }
  int64_t epochs() const { return epochs_; }
  // Sample k's pieces in order: part(document, first token, token count); together seq_len + 1 tokens.
  void parts(int64_t k, const std::function<void(int64_t, int64_t, int64_t)>& part) const;

 private:
  struct Position {
    int32_t document;  // into documents_
    int32_t offset;    // first token in that document
  };
  void build_samples(int64_t seq_len, int64_t tokens_per_epoch);
  std::vector<int32_t> documents_;  // the document order: every epoch's documents, shuffled
  std::vector<Position> starts_;    // sample i spans starts_[i] to starts_[i + 1]
  std::vector<uint32_t> shuffle_;   // sample k of the run is sample shuffle_[k]
  const std::vector<int32_t>* lengths_;
  int64_t epochs_ = 1;
};

// Megatron's split of n documents by weights (train, validation): documents [first, end) of each,
// rounded as Python's round() does. A zero weight gives an empty split.
struct DocumentRange {
  int64_t first = 0, end = 0;
};
std::vector<DocumentRange> megatron_split(int64_t documents, const std::vector<double>& weights);

}  // namespace lathe::models
