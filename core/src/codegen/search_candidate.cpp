// One LATHE_SEARCH candidate: lowered, compiled, run on scratch buffers whose contents are the
// same in every candidate, compared with the heuristics' values, then timed.
#include "codegen/search_candidate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "codegen/lower.h"
#include "lathe/dtype.h"

namespace lathe {
namespace {

// Values in [-1, 1) for float buffers, from a generator seeded by the buffer's identity (so
// each buffer holds the same values in every candidate, whatever order the kernel takes its
// parameters in); zero for integer buffers, whose values may be indices.
std::vector<uint8_t> scratch_contents(const Buffer* b) {
  std::vector<uint8_t> bytes(std::max<size_t>(b->bytes(), 1), 0);
  uint64_t state = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(b)) * 0x9E3779B97F4A7C15ull + 1;
  auto uniform = [&] {
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return static_cast<float>(static_cast<double>((state * 2685821657736338717ull) >> 40) / double(1 << 23) - 1.0);
  };
  for (int64_t i = 0; i < b->numel(); ++i) {
    float v = uniform();
    if (b->dtype() == DType::Float32) std::memcpy(&bytes[static_cast<size_t>(i) * 4], &v, 4);
    if (b->dtype() == DType::BFloat16 || b->dtype() == DType::Float16) {
      uint16_t h = b->dtype() == DType::BFloat16 ? float_to_bfloat16_bits(v) : float_to_half_bits(v);
      std::memcpy(&bytes[static_cast<size_t>(i) * 2], &h, 2);
    }
  }
  return bytes;
}

double element(DType dtype, const std::vector<uint8_t>& bytes, size_t i) {
  switch (dtype) {
    case DType::Float32: { float f; std::memcpy(&f, &bytes[i * 4], 4); return f; }
    case DType::BFloat16: { uint16_t h; std::memcpy(&h, &bytes[i * 2], 2); return bfloat16_bits_to_float(h); }
    default: { uint16_t h; std::memcpy(&h, &bytes[i * 2], 2); return half_bits_to_float(h); }
  }
}

// The largest difference between two outputs relative to the reference's scale (its largest
// magnitude, at least 1); infinite where integers differ or only one side is not finite.
double difference(DType dtype, const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  if (!is_float(dtype)) return got == want ? 0.0 : std::numeric_limits<double>::infinity();
  const size_t n = want.size() / itemsize(dtype);
  double scale = 1, worst = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::isfinite(element(dtype, want, i))) scale = std::max(scale, std::abs(element(dtype, want, i)));
  for (size_t i = 0; i < n; ++i) {
    double a = element(dtype, got, i), b = element(dtype, want, i);
    if (std::isnan(a) && std::isnan(b)) continue;
    if (!std::isfinite(a) || !std::isfinite(b)) {
      if (a != b) return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::abs(a - b) / scale);
  }
  return worst;
}

// Float32 sums in another order: far below this relative to the output's scale. 16-bit
// outputs round to their own precision.
double tolerance(DType dtype) { return dtype == DType::Float32 ? 1e-3 : dtype == DType::BFloat16 ? 2e-2 : 4e-3; }

}  // namespace

CandidateResult run_candidate(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* device,
                              const Opts& opts, const std::vector<std::vector<uint8_t>>* reference) {
  CandidateResult result;
  std::vector<void*> scratch;
  try {
    LoweringOptions o = apply_opts(opts, outs[0].first, device->info());
    if (!o.local.empty() || o.group_reduce > 1 || o.matrix_unit) {
      int64_t group = o.group_reduce * (o.matrix_unit ? o.matrix_unit->lanes : 1);
      for (int64_t l : o.local) group *= l;
      if (group > device->info().max_local_size) return result;
    }
    LoweredKernel lk = lower_kernel(outs, input_of, o);
    std::unique_ptr<Program> program = device->compile(lk.kernel);
    for (Buffer* b : lk.params) {
      scratch.push_back(device->allocate(std::max<size_t>(b->bytes(), 1)));
      std::vector<uint8_t> contents = scratch_contents(b);
      device->copy_in(scratch.back(), contents.data(), contents.size());
    }
    program->run(scratch, true);
    for (size_t i = 0; i < outs.size(); ++i) {
      result.values.emplace_back(std::max<size_t>(lk.params[i]->bytes(), 1));
      device->copy_out(result.values.back().data(), scratch[i], result.values.back().size());
      if (!reference) continue;
      DType dtype = lk.params[i]->dtype();
      result.difference = std::max(result.difference, difference(dtype, result.values.back(), (*reference)[i]));
      if (!(result.difference <= tolerance(dtype))) result.status = CandidateResult::Status::WrongValues;
    }
    if (result.status != CandidateResult::Status::WrongValues) {
      double best = 1e30;
      for (int i = 0; i < 3; ++i) best = std::min(best, program->run(scratch, true));
      result.seconds = best;
      result.status = CandidateResult::Status::Timed;
    }
  } catch (const std::exception&) {
    result.status = CandidateResult::Status::NotApplicable;
  }
  for (void* h : scratch) device->release(h);
  return result;
}

}  // namespace lathe
