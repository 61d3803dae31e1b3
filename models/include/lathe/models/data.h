// Token streams for training: a built-in synthetic task, UTF-8 text as bytes, llm.c/nanoGPT
// binary token files and .npy arrays. Batches are random windows drawn by a seeded sampler whose
// state is a single number, so a checkpoint can resume the exact stream.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lathe/tensor.h"

namespace lathe::models {

enum class Split { Train, Validation };

// splitmix64: tiny, fast, and its whole state is one integer.
class SamplerRng {
 public:
  explicit SamplerRng(uint64_t state = 0) : state_(state) {}
  uint64_t next();
  uint64_t below(uint64_t n) { return next() % n; }
  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual int64_t vocab_size() const = 0;
  virtual std::string describe() const = 0;
  // A split's sampler's first state, given one seeded from train.seed: a source that keeps an
  // order of its own starts at 0 and reads the state as the next sample's number.
  virtual uint64_t sampler_start(uint64_t seeded, Split split) const {
    (void)split;
    return seeded;
  }
  // Fills out[b * (seq + 1) + t] for b < batch, t <= seq: windows of seq+1 tokens.
  virtual void sample(int64_t batch, int64_t seq, Split split, SamplerRng& rng, std::vector<int32_t>& out) const = 0;
};

// Sequences that repeat a random block of 8 tokens: after the first block each token equals the
// one 8 positions back. Guessing costs log(vocab) per token; a model that learned to copy pays
// that only on the first block (8/seq_len of the positions).
std::unique_ptr<TokenSource> synthetic_source(int64_t vocab);
// A file of tokens: "*.bin" in the llm.c layout (256 int32 header: magic 20240520, version 1
// for uint16 or 2 for uint32 tokens, token count) or raw uint16 when the header is absent,
// "*.npy" integer arrays, anything else read as UTF-8 text tokenized as bytes (vocab 256).
// The last `val_fraction` of the tokens is the validation split.
std::unique_ptr<TokenSource> file_source(const std::string& path, double val_fraction);
// Training windows from `train`'s training split, validation windows from `validation`'s training
// split: a validation set of its own (data.val_path), both sources made with no validation split.
std::unique_ptr<TokenSource> separate_validation(std::unique_ptr<TokenSource> train, std::unique_ptr<TokenSource> validation);
// The tokens of a .bin file's bytes: llm.c's (a 256-int header, uint16 or uint32 tokens) or
// headerless uint16; header and size are checked, `path` names the file in errors.
std::vector<int32_t> parse_token_bin(const std::string& bytes, const std::string& path);

struct Batch {
  Tensor tokens;           // [B, T + 1] int32: the sampled windows, one device buffer
  Tensor inputs, targets;  // [B, T] views of tokens: the first T and the last T of each window
};
// The inputs and targets of windows of T + 1 tokens.
Batch batch_of(const Tensor& tokens);
Batch make_batch(const TokenSource& source, int64_t batch, int64_t seq, Split split, SamplerRng& rng, Device* device = nullptr);

// Writes tokens in the llm.c layout (uint16 when every token fits, else uint32).
void write_llmc_tokens(const std::string& path, const std::vector<uint32_t>& tokens);

}  // namespace lathe::models
