// The dispatch loop: for each work-group, its waves set up as the command processor and SPI
// would, then run in turn until each ends or reaches the barrier all must reach.
#include "gcn_dispatch.h"

#include <algorithm>
#include <cstring>

namespace lathe::amd::emu {
namespace {

constexpr uint64_t kMaxInstructionsPerWave = uint64_t{1} << 32;  // a kernel that runs longer is taken to hang

// Descriptor fields (LLVM AMDGPUUsage, "Kernel Descriptor").
struct Setup {
  explicit Setup(const KernelDescriptor& kd)
      : user_sgprs((kd.compute_pgm_rsrc2 >> 1) & 0x1f),
        scratch((kd.compute_pgm_rsrc2 & 1) != 0),
        group_id{(kd.compute_pgm_rsrc2 >> 7 & 1) != 0, (kd.compute_pgm_rsrc2 >> 8 & 1) != 0, (kd.compute_pgm_rsrc2 >> 9 & 1) != 0},
        group_info((kd.compute_pgm_rsrc2 >> 10 & 1) != 0),
        item_ids(1 + ((kd.compute_pgm_rsrc2 >> 11) & 3)),
        properties(kd.kernel_code_properties),
        preload_dwords(kd.kernarg_preload & 0x7f),
        preload_offset((kd.kernarg_preload >> 7) & 0x1ff),
        flush_f32(((kd.compute_pgm_rsrc1 >> 16) & 3) != 3),
        flush_f64_f16(((kd.compute_pgm_rsrc1 >> 18) & 3) != 3) {}
  uint32_t user_sgprs;
  bool scratch, group_id[3], group_info;
  int item_ids;
  uint16_t properties;
  uint32_t preload_dwords, preload_offset;
  bool flush_f32, flush_f64_f16;
};

// User SGPRs in the order the enable bits list them; only the first USER_SGPR_COUNT are loaded
// (a descriptor that counts too few leaves the rest unset, as the hardware would).
void load_user_sgprs(Wave& w, const Setup& setup, const DispatchShape& shape, Memory& memory, uint32_t private_size) {
  uint32_t next = 0;
  auto put = [&](uint32_t value) {
    if (next < setup.user_sgprs) w.s[next] = value;
    ++next;
  };
  auto put64 = [&](uint64_t value) {
    put(static_cast<uint32_t>(value));
    put(static_cast<uint32_t>(value >> 32));
  };
  const uint16_t p = setup.properties;
  if (p & 1) put64(0), put64(0);          // private segment buffer (no scratch here)
  if (p & 2) put64(shape.packet_address);  // dispatch ptr
  if (p & 4) put64(0);                     // queue ptr (no amd_queue_t here)
  if (p & 8) put64(shape.kernarg_address);
  if (p & 16) put64(0);                    // dispatch id
  if (p & 32) put64(0);                    // flat scratch init
  if (p & 64) put(private_size);
  if (setup.preload_dwords) {
    const uint8_t* args = memory.global(shape.kernarg_address + 4 * uint64_t{setup.preload_offset}, 4 * uint64_t{setup.preload_dwords});
    for (uint32_t i = 0; i < setup.preload_dwords; ++i) {
      uint32_t x = 0;
      if (args) std::memcpy(&x, args + 4 * i, 4);
      put(x);
    }
  }
}

}  // namespace

DispatchStats run_dispatch(const Program& program, const KernelDescriptor& kd, const DispatchShape& shape, Memory& memory) {
  const Setup setup(kd);
  DispatchContext ctx;
  ctx.memory = &memory;
  ctx.flush_f32 = setup.flush_f32;
  ctx.flush_f64_f16 = setup.flush_f64_f16;
  // ENABLE_WAVEFRONT_SIZE32 (gfx10 and later): the descriptor, not the target, sets the wave size.
  const int lanes = (kd.kernel_code_properties >> 10) & 1 ? 32 : 64;
  uint32_t groups[3];
  for (int d = 0; d < 3; ++d) groups[d] = (shape.grid[d] + shape.group[d] - 1) / shape.group[d];
  const uint32_t group_items = shape.group[0] * shape.group[1] * shape.group[2];
  const int waves_per_group = static_cast<int>((group_items + lanes - 1) / lanes);
  std::vector<std::unique_ptr<Wave>> waves;
  for (int i = 0; i < waves_per_group; ++i) waves.push_back(std::make_unique<Wave>(lanes));
  WorkGroup group;
  DispatchStats stats;
  for (uint32_t gz = 0; gz < groups[2]; ++gz)
    for (uint32_t gy = 0; gy < groups[1]; ++gy)
      for (uint32_t gx = 0; gx < groups[0]; ++gx) {
        const uint32_t id[3] = {gx, gy, gz};
        uint32_t size[3];  // this group's extent (the grid's last groups may be partial)
        for (int d = 0; d < 3; ++d) size[d] = std::min(shape.group[d], shape.grid[d] - id[d] * shape.group[d]);
        group.lds.assign(shape.group_segment_bytes, 0);
        for (int wi = 0; wi < waves_per_group; ++wi) {
          Wave& w = *waves[wi];
          std::memset(w.s, 0, sizeof(uint32_t) * reg::kZero);
          w.scc = false;
          w.pc = 0;
          w.state = Wave::State::Running;
          w.ctx = &ctx;
          w.group = &group;
          load_user_sgprs(w, setup, shape, memory, kd.private_segment_fixed_size);
          uint32_t sys = setup.user_sgprs;
          for (int d = 0; d < 3; ++d)
            if (setup.group_id[d]) w.write(static_cast<uint16_t>(sys++), id[d]);
          if (setup.group_info) w.write(static_cast<uint16_t>(sys++), static_cast<uint32_t>(waves_per_group));
          if (setup.scratch) w.write(static_cast<uint16_t>(sys++), 0);
          uint64_t exec = 0;
          for (int l = 0; l < lanes; ++l) {
            const uint32_t flat = static_cast<uint32_t>(wi * lanes + l);
            const uint32_t x = flat % shape.group[0], y = flat / shape.group[0] % shape.group[1], z = flat / (shape.group[0] * shape.group[1]);
            const bool live = flat < group_items && x < size[0] && y < size[1] && z < size[2];
            if (live) exec |= uint64_t{1} << l;
            // Packed work-item ids (gfx90a and later): x in bits 0-9, y 10-19, z 20-29.
            w.v[0][l] = x | (setup.item_ids > 1 ? y << 10 : 0) | (setup.item_ids > 2 ? z << 20 : 0);
          }
          w.set_exec(exec);
          if (!exec) w.state = Wave::State::Done;
          ++stats.waves;
        }
        // Each wave runs until it ends or waits at a barrier; when none can go on, the
        // waiting ones are released together.
        for (;;) {
          bool any_running = false, any_waiting = false;
          for (int wi = 0; wi < waves_per_group; ++wi) {
            Wave& w = *waves[wi];
            if (w.state != Wave::State::Running) continue;
            any_running = true;
            uint64_t executed = 0;
            try {
              while (w.state == Wave::State::Running) {
                if (w.pc >= program.insts.size()) throw Fault("the wave ran past the end of the kernel's code");
                const Inst& in = program.insts[w.pc++];
                in.exec(w, in);
                if (++executed > kMaxInstructionsPerWave) throw Fault("the wave did not end after 2^32 instructions");
              }
            } catch (const Fault& f) {
              throw Fault("amd_kfd emulator: kernel " + program.kernel + ", work-group (" + std::to_string(gx) + "," + std::to_string(gy) + "," +
                          std::to_string(gz) + "), wave " + std::to_string(wi) + ": " + f.what());
            }
            stats.instructions += executed;
          }
          for (auto& w : waves) any_waiting |= w->state == Wave::State::AtBarrier;
          if (!any_running && !any_waiting) break;
          if (!any_running)
            for (auto& w : waves)
              if (w->state == Wave::State::AtBarrier) w->state = Wave::State::Running;
        }
      }
  return stats;
}

}  // namespace lathe::amd::emu
