// Lowered kernels cached by the structure of their graph fragment, with the actions chosen for them.
#include "lowering_cache.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "codegen/lower.h"
#include "lathe/error.h"
#include "lathe/render.h"
#include "lathe/runtime.h"
#include "base/debug.h"
#include "search.h"

namespace lathe {
namespace {

// Appends without temporary strings: a realize builds a signature for every kernel, and
// eager calls are dominated by that host work.
void append_int(std::string& s, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, end);
}
void append_uint(std::string& s, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, end);
}
void append_shape(std::string& s, const Shape& shape) {
  s += '[';
  for (int64_t d : shape) append_int(s, d), s += ',';
  s += ']';
}

// A kernel's structure, independent of which buffers it reads: every training step builds
// the same graphs over new buffers, and this key lets them reuse the lowered kernel.
struct Fragment {
  std::string signature;
  std::vector<Buffer*> inputs;  // boundary buffers in visit order
};

Fragment fragment_of(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of) {
  Fragment f;
  std::unordered_map<Node*, int> ids;
  std::string& sig = f.signature;
  sig.reserve(256);
  for (auto& [value, output] : outs) {
    sig += "|";
    // Iterative post-order so deep graphs cannot overflow the stack.
    std::vector<std::pair<Node*, size_t>> stack = {{value, 0}};
    while (!stack.empty()) {
      auto& [n, i] = stack.back();
      Buffer* in = input_of(n);
      if (!in && i < n->src.size()) {
        Node* child = n->src[i++].get();
        if (!ids.count(child)) stack.push_back({child, 0});
        continue;
      }
      if (ids.count(n)) {
        stack.pop_back();
        continue;
      }
      int id = static_cast<int>(ids.size());
      ids[n] = id;
      append_int(sig, id);
      sig += ':';
      if (in) {
        // Which output (-2, -3, ...) or earlier input shares this buffer: the lowering merges them.
        int same = -1;
        for (size_t o = 0; o < outs.size() && same == -1; ++o)
          if (outs[o].second == in) same = -2 - static_cast<int>(o);
        for (size_t k = 0; k < f.inputs.size() && same == -1; ++k)
          if (f.inputs[k] == in) same = static_cast<int>(k);
        f.inputs.push_back(in);
        sig += "IN";
        append_int(sig, same);
        sig += '/';
        append_int(sig, static_cast<int>(n->dtype));
        append_shape(sig, n->shape);
      } else {
        append_int(sig, static_cast<int>(n->op));
        sig += '/';
        append_int(sig, static_cast<int>(n->dtype));
        append_shape(sig, n->shape);
        for (int64_t a : n->arg) sig += ',', append_int(sig, a);
        if (n->op == Op::Reduce) sig += 'r', append_int(sig, static_cast<int>(n->reduce_op));
        if (n->op == Op::Const) {
          uint64_t bits;
          std::memcpy(&bits, &n->fvalue, sizeof bits);
          sig += 'c';
          append_uint(sig, bits);
          sig += '/';
          append_int(sig, n->ivalue);
        }
        for (auto& src : n->src) sig += '<', append_int(sig, ids.at(src.get()));
      }
      sig += ";";
      stack.pop_back();
    }
    sig += '@';  // which node is stored: a row kernel's reductions are inside its first value
    append_int(sig, ids.at(value));
  }
  return f;
}

}  // namespace

std::string structure_key(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of) {
  return fragment_of(outs, input_of).signature;
}

std::mutex& lowering_mu() {
  static std::mutex mu;
  return mu;
}

// Lowers through a cache keyed by the fragment's structure.
Lowered lower_cached(const Outputs& outs, const std::function<Buffer*(Node*)>& input_of, Device* dev) {
  const DeviceInfo& device = dev->info();
  // Deliberately leaked, like the devices: its programs must not be released during static
  // destruction, after a backend's driver may already have shut down.
  static auto& cache = *new std::unordered_map<std::string, CachedLowering>;
  Node* value = outs[0].first;
  Fragment f = fragment_of(outs, input_of);
  // The options depend on what the device offers, not on which device it is.
  f.signature += "|" + std::to_string(device.parallel_all_outer_loops) + "/" + std::to_string(device.max_local_size) + "/" +
                 std::to_string(device.local_memory_bytes) + "/" + std::to_string(device.compute_units) + "/" + std::to_string(device.vector_floats);
  for (const MatrixUnit& u : device.matrix_units)
    f.signature += "/" + u.instruction + dtype_name(u.input) + (u.native ? "" : "e");
  Lowered out;
  {
    std::lock_guard<std::mutex> lock(lowering_mu());
    auto it = cache.find(f.signature);
    if (it != cache.end()) out.entry = &it->second;
  }
  if (!out.entry) {
    Opts opts = heuristic_opts(value, input_of, device);
    if (search_width() > 0) opts = search_opts(outs, input_of, dev, f.signature, opts);
    LoweredKernel lk;
    try {
      lk = lower_kernel(outs, input_of, apply_opts(opts, value, device));
    } catch (const Error&) {
      // Some multi-output kernels (a matmul stored beside its reshape) do not lower on the
      // matrix unit yet: they keep the float path.
      if (device.matrix_units.empty()) throw;
      DeviceInfo without = device;
      without.matrix_units.clear();
      opts = heuristic_opts(value, input_of, without);
      lk = lower_kernel(outs, input_of, apply_opts(opts, value, without));
    }
    if (debug_level() >= 2) debug_log().info("kernel {}: {}", lk.kernel.name, opts_text(opts));
    CachedLowering c{std::move(lk.kernel), {}, {}, {}};
    for (size_t p = outs.size(); p < lk.params.size(); ++p)
      c.param_input.push_back(static_cast<int>(std::find(f.inputs.begin(), f.inputs.end(), lk.params[p]) - f.inputs.begin()));
    c.key = kernel_ir_text(c.kernel);
    std::lock_guard<std::mutex> lock(lowering_mu());
    out.entry = &cache.emplace(std::move(f.signature), std::move(c)).first->second;  // node-based: the address is stable
  }
  for (auto& o : outs) out.params.push_back(o.second);
  for (int k : out.entry->param_input) out.params.push_back(f.inputs[k]);
  return out;
}

}  // namespace lathe
