// Megatron-LM's indexed dataset (`PREFIX.bin` tokens + `PREFIX.idx` index, magic "MMIDIDX"): a
// streaming writer, and a token source that memory-maps the tokens.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lathe/models/atomic_file.h"
#include "lathe/models/data.h"

namespace lathe::models {

// One sequence per document, as Megatron's preprocessing writes them; tokens as uint16 when the
// vocabulary fits, else int32. Nothing is visible under PREFIX until finish() (atomic files).
class MegatronWriter {
 public:
  MegatronWriter(const std::string& prefix, int64_t vocab_size);
  void add_document(const std::vector<int32_t>& tokens);
  void finish();
  int64_t tokens() const { return tokens_; }

 private:
  std::string prefix_;
  bool wide_;
  AtomicFile bin_;
  std::vector<int32_t> lengths_;
  int64_t tokens_ = 0;
};

// The index of PREFIX.idx, checked against PREFIX.bin's size.
struct MegatronIndex {
  int dtype_code = 0;          // Megatron's: 1 uint8, 2 int8, 3 int16, 4 int32, 5 int64, 8 uint16
  int64_t itemsize = 0;
  std::vector<int32_t> sequence_lengths;
  std::vector<int64_t> sequence_pointers;  // byte offsets into .bin
  std::vector<int64_t> document_indices;   // first sequence of each document, then the count
};
MegatronIndex read_megatron_index(const std::string& prefix);

// How a Megatron dataset is sampled: as Megatron-LM's GPT dataset does for this seed, sequence
// length and sample counts (which set the epochs), the documents split by (1 - val_fraction,
// val_fraction) as Megatron's split "weights" does.
struct MegatronSampling {
  uint32_t seed = 0;
  int64_t seq_len = 0;
  int64_t train_samples = 0, validation_samples = 0;  // 0: one epoch
};
// PREFIX (or PREFIX.bin / PREFIX.idx), memory-mapped. The sampler's state is the next sample's
// number: sample k of a run is Megatron's sample k.
std::unique_ptr<TokenSource> megatron_source(const std::string& prefix, double val_fraction, const MegatronSampling& sampling);

}  // namespace lathe::models
