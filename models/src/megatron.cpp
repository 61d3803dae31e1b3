// Megatron-LM's indexed dataset: writing PREFIX.bin/.idx, reading the index, memory-mapped tokens.
#include "lathe/models/megatron.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "lathe/error.h"
#include "lathe/models/megatron_samples.h"

namespace lathe::models {
namespace {

const char kMagic[9] = {'M', 'M', 'I', 'D', 'I', 'D', 'X', 0, 0};
constexpr int kUint16 = 8, kInt32 = 4;

std::string strip_extension(const std::string& p) {
  for (const char* ext : {".bin", ".idx"})
    if (p.size() > 4 && p.compare(p.size() - 4, 4, ext) == 0) return p.substr(0, p.size() - 4);
  return p;
}

int64_t itemsize_of(int code) {
  switch (code) {
    case 1: case 2: return 1;
    case 3: case 8: return 2;
    case 4: return 4;
    case 5: return 8;
    default: return 0;
  }
}

}  // namespace

MegatronWriter::MegatronWriter(const std::string& prefix, int64_t vocab_size)
    : prefix_(strip_extension(prefix)), wide_(vocab_size > 65535), bin_(prefix_ + ".bin") {}

void MegatronWriter::add_document(const std::vector<int32_t>& tokens) {
  check(tokens.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), prefix_ + ": a document of over 2^31 tokens");
  if (wide_) {
    bin_.write(tokens.data(), tokens.size() * 4);
  } else {
    std::vector<uint16_t> narrow(tokens.begin(), tokens.end());
    bin_.write(narrow.data(), narrow.size() * 2);
  }
  lengths_.push_back(static_cast<int32_t>(tokens.size()));
  tokens_ += static_cast<int64_t>(tokens.size());
}

void MegatronWriter::finish() {
  AtomicFile idx(prefix_ + ".idx");
  const uint64_t version = 1, count = lengths_.size(), documents = lengths_.size() + 1;
  const uint8_t code = wide_ ? kInt32 : kUint16;
  idx.write(kMagic, sizeof kMagic);
  idx.write(&version, 8);
  idx.write(&code, 1);
  idx.write(&count, 8);
  idx.write(&documents, 8);
  idx.write(lengths_.data(), lengths_.size() * 4);
  std::vector<int64_t> pointers(lengths_.size()), docs(documents);
  int64_t at = 0;
  for (size_t i = 0; i < lengths_.size(); ++i) pointers[i] = at, at += int64_t{lengths_[i]} * (wide_ ? 4 : 2);
  for (size_t i = 0; i < docs.size(); ++i) docs[i] = static_cast<int64_t>(i);
  idx.write(pointers.data(), pointers.size() * 8);
  idx.write(docs.data(), docs.size() * 8);
  bin_.commit();
  idx.commit();
}

MegatronIndex read_megatron_index(const std::string& prefix_or_file) {
  const std::string prefix = strip_extension(prefix_or_file), path = prefix + ".idx";
  std::ifstream in(path, std::ios::binary);
  check(static_cast<bool>(in), "megatron dataset: cannot open " + path + " (data.path names PREFIX of PREFIX.bin and PREFIX.idx)");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  auto need = [&](int64_t bytes, const char* what) {
    check(static_cast<int64_t>(in.tellg()) + bytes <= size,
          path + ": truncated (" + std::to_string(size) + " bytes) where " + what + " should be; write the dataset again");
  };
  char magic[9];
  need(34, "the header");
  in.read(magic, 9);
  check(std::memcmp(magic, kMagic, 9) == 0, path + ": not a Megatron index (no MMIDIDX magic)");
  uint64_t version = 0, count = 0, documents = 0;
  uint8_t code = 0;
  in.read(reinterpret_cast<char*>(&version), 8);
  in.read(reinterpret_cast<char*>(&code), 1);
  in.read(reinterpret_cast<char*>(&count), 8);
  in.read(reinterpret_cast<char*>(&documents), 8);
  check(version == 1, path + ": index version " + std::to_string(version) + " (only 1 is known)");
  MegatronIndex ix;
  ix.dtype_code = code;
  ix.itemsize = itemsize_of(code);
  check(code == kUint16 || code == kInt32 || code == 1 || code == 3 || code == 5,
        path + ": token dtype code " + std::to_string(code) + " is not an integer type");
  check(count < (uint64_t{1} << 40) && documents <= count + 1, path + ": " + std::to_string(count) + " sequences and " +
                                                                    std::to_string(documents) + " document indices do not fit together");
  need(static_cast<int64_t>(count) * 12 + static_cast<int64_t>(documents) * 8, "the sequence lengths, pointers and document indices");
  ix.sequence_lengths.resize(count);
  ix.sequence_pointers.resize(count);
  ix.document_indices.resize(documents);
  in.read(reinterpret_cast<char*>(ix.sequence_lengths.data()), static_cast<std::streamsize>(count * 4));
  in.read(reinterpret_cast<char*>(ix.sequence_pointers.data()), static_cast<std::streamsize>(count * 8));
  in.read(reinterpret_cast<char*>(ix.document_indices.data()), static_cast<std::streamsize>(documents * 8));
  struct stat st {};
  check(stat((prefix + ".bin").c_str(), &st) == 0, "megatron dataset: cannot open " + prefix + ".bin");
  for (size_t i = 0; i < count; ++i) {
    const int64_t end = ix.sequence_pointers[i] + int64_t{ix.sequence_lengths[i]} * ix.itemsize;
    check(ix.sequence_lengths[i] >= 0 && ix.sequence_pointers[i] >= 0 && end <= st.st_size,
          path + ": sequence " + std::to_string(i) + " ends at byte " + std::to_string(end) + " of " + prefix + ".bin's " +
              std::to_string(st.st_size) + "; the .bin is truncated or belongs to another index");
  }
  return ix;
}

namespace {

class MegatronSource : public TokenSource {
 public:
  MegatronSource(const std::string& prefix, double val_fraction, const MegatronSampling& sampling)
      : prefix_(strip_extension(prefix)), index_(read_megatron_index(prefix)), seq_len_(sampling.seq_len), val_fraction_(val_fraction) {
    check(val_fraction >= 0 && val_fraction < 1, prefix_ + ": val_fraction must be in [0, 1)");
    const auto documents = static_cast<int64_t>(index_.sequence_lengths.size());
    const std::vector<DocumentRange> split = megatron_split(documents, {1 - val_fraction, val_fraction});
    auto build = [&](const DocumentRange& r, int64_t samples, const char* name, std::optional<GptSampleIndex>& into) {
      try {
        into.emplace(index_.sequence_lengths, GptSamplePlan{r.first, r.end, sampling.seq_len, samples, sampling.seed});
      } catch (const Error& e) {
        throw Error(prefix_ + ", " + name + " split (documents " + std::to_string(r.first) + " to " + std::to_string(r.end) +
                    " of " + std::to_string(documents) + "): " + e.what());
      }
    };
    build(split[0], sampling.train_samples, "training", train_);
    if (split[1].end > split[1].first) build(split[1], sampling.validation_samples, "validation", validation_);
    const int fd = open((prefix_ + ".bin").c_str(), O_RDONLY);
    check(fd >= 0, "megatron dataset: cannot open " + prefix_ + ".bin");
    struct stat st {};
    fstat(fd, &st);
    bytes_ = static_cast<size_t>(st.st_size);
    map_ = bytes_ ? mmap(nullptr, bytes_, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
    close(fd);
    check(map_ != MAP_FAILED, "megatron dataset: cannot map " + prefix_ + ".bin");
    try {  // a bad token unmaps the file before the error leaves (no destructor runs then)
      for (int64_t d = 0; d < documents; ++d) {
        tokens_ += index_.sequence_lengths[static_cast<size_t>(d)];
        for (int64_t t = 0; t < index_.sequence_lengths[static_cast<size_t>(d)]; ++t) {
          const int64_t v = token(d, t);
          check(v >= 0, prefix_ + ".bin: document " + std::to_string(d) + ", token " + std::to_string(t) + " is negative (" +
                            std::to_string(v) + ")");
          vocab_ = std::max(vocab_, v + 1);
        }
      }
    } catch (...) {
      if (map_) munmap(map_, bytes_);
      throw;
    }
  }
  ~MegatronSource() override {
    if (map_) munmap(map_, bytes_);
  }
  int64_t vocab_size() const override { return vocab_; }
  std::string describe() const override {
    return prefix_ + " (Megatron, " + std::to_string(index_.sequence_lengths.size()) + " documents, " + std::to_string(tokens_) +
           " tokens; " + std::to_string(train_->size()) + " samples in " + std::to_string(train_->epochs()) + " epochs" +
           (validation_ ? ", " + std::to_string(validation_->size()) + " for validation)" : ")");
  }
  uint64_t sampler_start(uint64_t, Split) const override { return 0; }
  void sample(int64_t batch, int64_t seq, Split split, SamplerRng& rng, std::vector<int32_t>& out) const override {
    check(seq == seq_len_, prefix_ + ": Megatron samples were built for sequence length " + std::to_string(seq_len_) + ", not " +
                               std::to_string(seq));
    const std::optional<GptSampleIndex>& samples = split == Split::Train ? train_ : validation_;
    check(samples.has_value(), [&] {
      std::ostringstream fraction;
      fraction << val_fraction_;
      return prefix_ + ": data.val_fraction = " + fraction.str() + " leaves none of its " +
             std::to_string(index_.sequence_lengths.size()) + " documents for validation; raise data.val_fraction";
    });
    out.resize(static_cast<size_t>(batch * (seq + 1)));
    size_t at = 0;
    const uint64_t next = rng.state();
    for (int64_t b = 0; b < batch; ++b) {
      // Past the last sample the order starts again.
      samples->parts(static_cast<int64_t>((next + static_cast<uint64_t>(b)) % static_cast<uint64_t>(samples->size())),
                     [&](int64_t document, int64_t first, int64_t count) {
                       for (int64_t t = first; t < first + count; ++t) out[at++] = static_cast<int32_t>(token(document, t));
                     });
    }
    rng.set_state(next + static_cast<uint64_t>(batch));
  }

 private:
  int64_t token(int64_t document, int64_t t) const {
    const auto* p = static_cast<const unsigned char*>(map_) + index_.sequence_pointers[static_cast<size_t>(document)] + t * index_.itemsize;
    switch (index_.dtype_code) {
      case 1: return *p;
      case 3: { int16_t v; std::memcpy(&v, p, 2); return v; }
      case 8: { uint16_t v; std::memcpy(&v, p, 2); return v; }
      case 4: { int32_t v; std::memcpy(&v, p, 4); return v; }
      default: { int64_t v; std::memcpy(&v, p, 8); return v; }
    }
  }
  std::string prefix_;
  MegatronIndex index_;
  int64_t seq_len_;
  double val_fraction_;
  void* map_ = nullptr;
  size_t bytes_ = 0;
  int64_t tokens_ = 0, vocab_ = 0;
  std::optional<GptSampleIndex> train_, validation_;
};

}  // namespace

std::unique_ptr<TokenSource> megatron_source(const std::string& prefix, double val_fraction, const MegatronSampling& sampling) {
  return std::make_unique<MegatronSource>(prefix, val_fraction, sampling);
}

}  // namespace lathe::models
