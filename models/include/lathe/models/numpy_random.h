// NumPy's legacy generator (numpy.random.RandomState): MT19937 seeded from one integer, and its
// in-place shuffle, so that orders other tools draw from a seed can be drawn here too.
#pragma once
#include <array>
#include <cstdint>
#include <span>

namespace lathe::models {

class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed);
  uint32_t next_uint32();
  uint64_t next_uint64();
  // A uniform value in [0, max]: masked draws, rejected while above max (RandomState's way).
  uint64_t interval(uint64_t max);
  // RandomState.shuffle of a 1-D array: Fisher-Yates from the last element down.
  template <typename T>
  void shuffle(std::span<T> values) {
    for (size_t i = values.size(); i-- > 1;) {
      const size_t j = static_cast<size_t>(interval(i));
      std::swap(values[i], values[j]);
    }
  }

 private:
  void refill();
  std::array<uint32_t, 624> state_{};
  int position_ = 624;
};

}  // namespace lathe::models
