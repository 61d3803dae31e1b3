// MT19937 as NumPy's RandomState seeds and draws it (Matsumoto and Nishimura's reference generator).
#include "lathe/models/numpy_random.h"

namespace lathe::models {

NumpyRandomState::NumpyRandomState(uint32_t seed) {
  state_[0] = seed;
  for (uint32_t i = 1; i < state_.size(); ++i) state_[i] = 1812433253u * (state_[i - 1] ^ (state_[i - 1] >> 30)) + i;
}

void NumpyRandomState::refill() {
  constexpr int n = 624, m = 397;
  constexpr uint32_t upper = 0x80000000u, lower = 0x7fffffffu, matrix = 0x9908b0dfu;
  for (int i = 0; i < n; ++i) {
    const uint32_t y = (state_[static_cast<size_t>(i)] & upper) | (state_[static_cast<size_t>((i + 1) % n)] & lower);
    state_[static_cast<size_t>(i)] = state_[static_cast<size_t>((i + m) % n)] ^ (y >> 1) ^ ((y & 1u) ? matrix : 0u);
  }
  position_ = 0;
}

uint32_t NumpyRandomState::next_uint32() {
  if (position_ >= 624) refill();
  uint32_t y = state_[static_cast<size_t>(position_++)];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

// The high word is drawn first.
uint64_t NumpyRandomState::next_uint64() {
  const uint64_t high = next_uint32();
  return high << 32 | next_uint32();
}

uint64_t NumpyRandomState::interval(uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max;
  for (int shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
  uint64_t value;
  if (max <= 0xffffffffu) {
    while ((value = (next_uint32() & mask)) > max) {}
  } else {
    while ((value = (next_uint64() & mask)) > max) {}
  }
  return value;
}

}  // namespace lathe::models
