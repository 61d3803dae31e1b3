// Megatron's GPT-dataset order: samples equal megatron-core's for a dataset its own writer made
// (fixtures/megatron/make_fixture.py), and NumPy's generator as NumPy draws it.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "lathe/error.h"
#include "lathe/models/megatron.h"
#include "lathe/models/megatron_samples.h"
#include "lathe/models/numpy_random.h"

using namespace lathe;
using namespace lathe::models;

TEST(NumpyRandom, MatchesRandomStateForASeed) {
  // numpy 2.4: RandomState(5).bytes(8).hex() is "638bd438ce48200e" (little-endian 32-bit draws).
  NumpyRandomState rng(5);
  uint32_t a = rng.next_uint32(), b = rng.next_uint32();
  unsigned char bytes[8];
  std::memcpy(bytes, &a, 4);
  std::memcpy(bytes + 4, &b, 4);
  std::ostringstream hex;
  for (unsigned char c : bytes) hex << std::hex << (c < 16 ? "0" : "") << static_cast<int>(c);
  EXPECT_EQ(hex.str(), "638bd438ce48200e");
  // RandomState(5).shuffle(numpy.arange(10)) gives [9, 5, 2, 4, 7, 1, 0, 8, 6, 3].
  NumpyRandomState again(5);
  std::vector<int32_t> values{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  again.shuffle(std::span<int32_t>(values));
  EXPECT_EQ(values, (std::vector<int32_t>{9, 5, 2, 4, 7, 1, 0, 8, 6, 3}));
}

TEST(MegatronSamples, SplitRoundsAsPython) {
  // round(0.5 * 5) == 2 and round(0.9 * 25) == 22 in Python (half to even).
  auto half = megatron_split(5, {1, 1});
  EXPECT_EQ(half[0].end, 2);
  EXPECT_EQ(half[1].first, 2);
  EXPECT_EQ(half[1].end, 5);
  EXPECT_EQ(megatron_split(25, {0.9, 0.1})[0].end, 22);
  auto none = megatron_split(10, {1, 0});
  EXPECT_EQ(none[1].end - none[1].first, 0);
}

TEST(MegatronSamples, SameSamplesInTheSameOrderAsMegatronCore) {
  const std::string dir = std::string(LATHE_FIXTURES) + "/megatron/";
  std::ifstream in(dir + "gpt_samples.txt");
  ASSERT_TRUE(in) << "missing " << dir << "gpt_samples.txt";
  std::string line, word;
  int cases = 0;
  int64_t compared = 0;
  std::unique_ptr<TokenSource> source;
  int64_t seq = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    fields >> word;
    if (word == "case") {
      uint32_t seed;
      int64_t train, valid;
      double train_weight, valid_weight;
      fields >> seed >> seq >> train >> valid >> train_weight >> valid_weight;
      source = megatron_source(dir + "gpt", valid_weight / (train_weight + valid_weight), {seed, seq, train, valid});
      ++cases;
      continue;
    }
    ASSERT_EQ(word, "split");
    std::string split_name;
    int64_t count;
    fields >> split_name >> count;
    const Split split = split_name == "train" ? Split::Train : Split::Validation;
    SamplerRng rng(source->sampler_start(12345, split));
    std::vector<int32_t> got;
    for (int64_t k = 0; k < count; ++k) {
      ASSERT_TRUE(std::getline(in, line));
      std::istringstream tokens(line);
      std::vector<int32_t> want;
      for (int32_t t; tokens >> t;) want.push_back(t);
      source->sample(1, seq, split, rng, got);
      ASSERT_EQ(got, want) << "case " << cases << ", " << split_name << " sample " << k;
      ++compared;
    }
    // Past the last sample the order starts again.
    SamplerRng wrapped(static_cast<uint64_t>(count));
    std::vector<int32_t> first;
    SamplerRng start(0);
    source->sample(1, seq, split, wrapped, got);
    source->sample(1, seq, split, start, first);
    EXPECT_EQ(got, first);
  }
  EXPECT_EQ(cases, 4);
  EXPECT_GT(compared, 700);
}

TEST(MegatronSamples, RefusesAnotherSequenceLengthAndAnEmptyValidationSplit) {
  const std::string prefix = std::string(LATHE_FIXTURES) + "/megatron/gpt";
  auto source = megatron_source(prefix, 0.0, {1, 16, 0, 0});
  SamplerRng rng(0);
  std::vector<int32_t> out;
  try {
    source->sample(1, 32, Split::Train, rng, out);
    FAIL() << "sequence length 32 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence length 16, not 32"), std::string::npos) << e.what();
  }
  try {
    source->sample(1, 16, Split::Validation, rng, out);
    FAIL() << "empty validation split sampled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("leaves none of its 60 documents for validation"), std::string::npos) << e.what();
  }
  // Half of 1,403 tokens cannot fill one sample of 1,001: the split and its documents are named.
  try {
    megatron_source(prefix, 0.5, {1, 1000, 0, 0});
    FAIL() << "a split shorter than one sample accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training split (documents 0 to 30 of 60)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fewer than one sample of 1001"), std::string::npos) << e.what();
  }
}
