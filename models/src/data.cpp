#include "lathe/models/data.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "lathe/models/atomic_file.h"
#include "lathe/models/npy.h"

namespace lathe::models {

uint64_t SamplerRng::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

class SyntheticSource : public TokenSource {
 public:
  static constexpr int64_t kPeriod = 8;
  explicit SyntheticSource(int64_t vocab) : vocab_(vocab) {
    check(vocab >= 4, "synthetic data: vocab_size must be at least 4, got " + std::to_string(vocab));
  }
  int64_t vocab_size() const override { return vocab_; }
  std::string describe() const override { return "synthetic repeated blocks of " + std::to_string(kPeriod) + " tokens, vocab " + std::to_string(vocab_); }
  void sample(int64_t batch, int64_t seq, Split split, SamplerRng& rng, std::vector<int32_t>& out) const override {
    (void)split;  // both splits draw from the task itself; the caller keeps a generator per split
    out.resize(static_cast<size_t>(batch * (seq + 1)));
    for (int64_t b = 0; b < batch; ++b) {
      // A random block of kPeriod tokens, repeated: after the first block every token equals
      // the one kPeriod positions back, which attention can find.
      int32_t block[kPeriod];
      for (auto& x : block) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab_)));
      for (int64_t t = 0; t <= seq; ++t) out[b * (seq + 1) + t] = block[t % kPeriod];
    }
  }

 private:
  int64_t vocab_;
};

class ArraySource : public TokenSource {
 public:
  ArraySource(std::vector<int32_t> tokens, int64_t vocab, double val_fraction, std::string what)
      : tokens_(std::move(tokens)), vocab_(vocab), what_(std::move(what)) {
    check(val_fraction >= 0 && val_fraction < 1, what_ + ": val_fraction must be in [0, 1)");
    split_ = static_cast<int64_t>(static_cast<double>(tokens_.size()) * (1 - val_fraction));
  }
  int64_t vocab_size() const override { return vocab_; }
  std::string describe() const override {
    return what_ + " (" + std::to_string(tokens_.size()) + " tokens, vocab " + std::to_string(vocab_) + ")";
  }
  void sample(int64_t batch, int64_t seq, Split split, SamplerRng& rng, std::vector<int32_t>& out) const override {
    int64_t begin = split == Split::Train ? 0 : split_, end = split == Split::Train ? split_ : static_cast<int64_t>(tokens_.size());
    int64_t span = end - begin - (seq + 1);
    check(span >= 0, what_ + ": the " + (split == Split::Train ? std::string("training") : std::string("validation")) + " split holds " +
                         std::to_string(end - begin) + " tokens, fewer than one window of " + std::to_string(seq + 1) +
                         "; use a shorter seq_len or a larger file");
    out.resize(static_cast<size_t>(batch * (seq + 1)));
    for (int64_t b = 0; b < batch; ++b) {
      int64_t start = begin + static_cast<int64_t>(rng.below(static_cast<uint64_t>(span) + 1));
      std::memcpy(&out[b * (seq + 1)], &tokens_[start], static_cast<size_t>(seq + 1) * sizeof(int32_t));
    }
  }

 private:
  std::vector<int32_t> tokens_;
  int64_t vocab_, split_ = 0;
  std::string what_;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("data file " + path + " is missing or unreadable; set data.path to an existing file");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<int32_t> parse_token_bin(const std::string& bytes, const std::string& path) {
  std::vector<int32_t> tokens;
  int32_t header[256] = {};
  bool llmc = bytes.size() >= sizeof header && (std::memcpy(header, bytes.data(), sizeof header), header[0] == 20240520);
  size_t offset = llmc ? sizeof header : 0, width = llmc && header[1] == 2 ? 4 : 2;
  check(!llmc || header[1] == 1 || header[1] == 2, path + ": llm.c token file version " + std::to_string(header[1]) + " is not 1 (uint16) or 2 (uint32)");
  check(!llmc || header[2] >= 0, path + ": llm.c header's token count is " + std::to_string(header[2]) + "; the file is damaged");
  check(llmc || (bytes.size() - offset) % width == 0, path + ": a headerless .bin holds uint16 tokens, but its size (" +
                                                        std::to_string(bytes.size()) + " bytes) is odd; the file is truncated or not tokens");
  size_t count = llmc ? static_cast<size_t>(header[2]) : (bytes.size() - offset) / width;
  check(count <= (bytes.size() - offset) / width, path + " is truncated: its header promises " + std::to_string(count) +
                                                      " tokens, the file holds " + std::to_string((bytes.size() - offset) / width));
  tokens.resize(count);
  for (size_t i = 0; i < count; ++i) {
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + offset + i * width, width);
    tokens[i] = static_cast<int32_t>(v);
  }
  return tokens;
}

namespace {

class SeparateValidation : public TokenSource {
 public:
  SeparateValidation(std::unique_ptr<TokenSource> train, std::unique_ptr<TokenSource> validation)
      : train_(std::move(train)), validation_(std::move(validation)) {}
  // Token ids of either set must fit the model, so the vocabulary covers both.
  int64_t vocab_size() const override { return std::max(train_->vocab_size(), validation_->vocab_size()); }
  std::string describe() const override { return train_->describe() + "; validation: " + validation_->describe(); }
  uint64_t sampler_start(uint64_t seeded, Split split) const override { return of(split).sampler_start(seeded, Split::Train); }
  void sample(int64_t batch, int64_t seq, Split split, SamplerRng& rng, std::vector<int32_t>& out) const override {
    of(split).sample(batch, seq, Split::Train, rng, out);
  }

 private:
  const TokenSource& of(Split split) const { return split == Split::Train ? *train_ : *validation_; }
  std::unique_ptr<TokenSource> train_, validation_;
};

}  // namespace

std::unique_ptr<TokenSource> separate_validation(std::unique_ptr<TokenSource> train, std::unique_ptr<TokenSource> validation) {
  return std::make_unique<SeparateValidation>(std::move(train), std::move(validation));
}

std::unique_ptr<TokenSource> synthetic_source(int64_t vocab) { return std::make_unique<SyntheticSource>(vocab); }

std::unique_ptr<TokenSource> file_source(const std::string& path, double val_fraction) {
  auto ends_with = [&](const char* s) { return path.size() >= std::strlen(s) && path.compare(path.size() - std::strlen(s), std::string::npos, s) == 0; };
  std::vector<int32_t> tokens;
  int64_t vocab = 256;
  std::string what = path;
  if (ends_with(".npy")) {
    Tensor t = load_npy(path);
    check(!is_float(t.dtype()), path + ": token arrays must hold integers, not " + std::string(dtype_name(t.dtype())));
    tokens = t.flatten().cast(DType::Int32).to_vector<int32_t>();
  } else if (ends_with(".bin")) {
    tokens = parse_token_bin(read_all(path), path);
  } else {
    std::string bytes = read_all(path);
    tokens.assign(bytes.begin(), bytes.end());
    for (auto& t : tokens) t &= 0xff;
    what += " as bytes";
  }
  if (!ends_with(".npy") && !ends_with(".bin")) return std::make_unique<ArraySource>(std::move(tokens), 256, val_fraction, what);
  int32_t max_id = 0;
  for (int32_t t : tokens) {
    check(t >= 0, path + ": negative token id " + std::to_string(t));
    max_id = std::max(max_id, t);
  }
  vocab = static_cast<int64_t>(max_id) + 1;
  return std::make_unique<ArraySource>(std::move(tokens), vocab, val_fraction, what);
}

Batch make_batch(const TokenSource& source, int64_t batch, int64_t seq, Split split, SamplerRng& rng, Device* device) {
  std::vector<int32_t> window;
  source.sample(batch, seq, split, rng, window);
  return batch_of(Tensor::from_vector(window, {batch, seq + 1}, DType::Int32, device));
}

Batch batch_of(const Tensor& tokens) {
  int64_t seq = tokens.shape()[1] - 1;
  return {tokens, tokens.slice(1, 0, seq), tokens.slice(1, 1, seq + 1)};
}

void write_llmc_tokens(const std::string& path, const std::vector<uint32_t>& tokens) {
  uint32_t max_id = 0;
  for (uint32_t t : tokens) max_id = std::max(max_id, t);
  int32_t header[256] = {};
  header[0] = 20240520;
  header[1] = max_id > 65535 ? 2 : 1;
  header[2] = static_cast<int32_t>(tokens.size());
  AtomicFile f(path);
  f.write(header, sizeof header);
  for (uint32_t t : tokens) {
    if (header[1] == 1) {
      uint16_t v = static_cast<uint16_t>(t);
      f.write(&v, 2);
    } else {
      f.write(&t, 4);
    }
  }
  f.commit();
}

}  // namespace lathe::models
