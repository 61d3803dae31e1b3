// The test driver with machine code that runs: every AQL dispatch executes the kernel's
// gfx942 code on the instruction-level emulator (emulator/), over the same checked memory,
// queues and signals as TestDriver. Test support (LATHE_AMD_KFD_DRIVER=emulator), like it.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "emulator/gcn_program.h"
#include "test_driver.h"

namespace lathe::amd {

class EmulatorDriver : public TestDriver {
 public:
  // The target: LATHE_AMD_KFD_EMULATOR_TARGET (gfx942 when unset; gfx90a, gfx1100).
  EmulatorDriver();
  std::string name() const override { return "emulator"; }
  bool runs_twins() const override { return false; }
  void code_loaded(const CodeObject& code, uint64_t va) override;

  struct Counters {
    uint64_t dispatches = 0, instructions = 0, waves = 0;
    double seconds = 0;  // spent executing
  };
  Counters counters() const;

 protected:
  bool execute(const KernelDispatchPacket& packet, uint64_t packet_va, const KernelDescriptor& kd) override;

 private:
  struct Loaded {
    std::string name, target;
    uint64_t code_size = 0;
    std::shared_ptr<const emu::Program> program;  // decoded at its first dispatch, from GPU memory
  };
  mutable std::mutex kernels_mu_;
  std::map<uint64_t, Loaded> kernels_;  // by entry address
  Counters counters_;
};

}  // namespace lathe::amd
