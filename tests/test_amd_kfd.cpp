// The amd_kfd backend short of the silicon: topology parsing on recorded sysfs trees, AQL
// packets byte for byte, code objects for three targets checked against llvm-readelf, and the
// KFD protocol against the test driver (ioctl order, argument checks, dispatch and completion).
#include <gtest/gtest.h>
#include <linux/kfd_ioctl.h>
#include <sys/mman.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include "aql.h"
#include "amdgpu_dialect.h"
#include "code_object.h"
#include "kfd_gpu.h"
#include "lathe/backends.h"
#include "lathe/error.h"
#include "codegen/lower.h"
#include "lathe/runtime.h"
#include "lathe/tensor.h"
#include "schedule/schedule.h"
#include "test_driver.h"
#include "topology.h"

namespace lathe::amd {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) { return std::string(LATHE_FIXTURES) + "/kfd_topology/" + name + "/nodes"; }

TEST(KfdTopology, RecordedMi300xNode) {
  std::vector<GpuNode> gpus = read_topology(fixture("gfx942"));
  ASSERT_EQ(gpus.size(), 1u);  // two CPU nodes are skipped
  const GpuNode& g = gpus[0];
  EXPECT_EQ(g.node, 2);
  EXPECT_EQ(g.gpu_id, 53248u);
  EXPECT_EQ(g.gfx_target_version, 90402u);
  EXPECT_EQ(g.target, "gfx942");
  EXPECT_EQ(g.compute_units, 304);  // simd_count 1216 / 4 SIMDs per CU
  EXPECT_EQ(g.wave_front_size, 64);
  EXPECT_EQ(g.drm_render_minor, 128);
  EXPECT_EQ(g.num_xcc, 8);
  EXPECT_EQ(g.vram_bytes, 206141652992u);
  EXPECT_EQ(g.max_engine_clk_mhz, 2100u);
}

TEST(KfdTopology, RecordedRdna3Node) {
  std::vector<GpuNode> gpus = read_topology(fixture("gfx1100"));
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].target, "gfx1100");
  EXPECT_EQ(gpus[0].compute_units, 96);  // 192 SIMDs, 2 per CU
  EXPECT_EQ(gpus[0].wave_front_size, 32);
  EXPECT_EQ(gpus[0].drm_render_minor, 129);
  EXPECT_EQ(gpus[0].vram_bytes, 25753026560u);
}

TEST(KfdTopology, TargetNamesAndBadInput) {
  EXPECT_EQ(target_name(90010), "gfx90a");
  EXPECT_EQ(target_name(90402), "gfx942");
  EXPECT_EQ(target_name(90500), "gfx950");
  EXPECT_EQ(target_name(110000), "gfx1100");
  EXPECT_TRUE(read_topology("/nonexistent/kfd/nodes").empty());
  fs::path dir = fs::temp_directory_path() / ("lathe-bad-topology-" + std::to_string(getpid()));
  fs::create_directories(dir / "1");
  std::ofstream(dir / "1" / "gpu_id") << "7\n";
  std::ofstream(dir / "1" / "properties") << "simd_count 8\ngfx_target_version nine\n";
  try {
    read_topology(dir.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("properties:2"), std::string::npos) << e.what();  // file and line
  }
  fs::remove_all(dir);
}

template <class T>
std::array<uint8_t, 64> bytes_of(const T& p) {
  std::array<uint8_t, 64> b;
  std::memcpy(b.data(), &p, 64);
  return b;
}
void put(std::array<uint8_t, 64>& b, size_t off, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

TEST(Aql, DispatchPacketMatchesTheHsaLayout) {
  Dispatch d = make_dispatch(0x7f0000001000, 0x7f0000002000, 4096, 256, 1024, 16, 0x7f0000003000);
  // Header: type 2 (kernel dispatch) | barrier (bit 8) | system acquire (2 << 9) | system release (2 << 11).
  EXPECT_EQ(d.header, 0x1502);
  std::array<uint8_t, 64> want{};
  put(want, 0, 0, 2);  // the header goes in last (publish)
  put(want, 2, 1, 2);  // setup: one dimension
  put(want, 4, 256, 2);
  put(want, 6, 1, 2);
  put(want, 8, 1, 2);
  put(want, 12, 4096, 4);
  put(want, 16, 1, 4);
  put(want, 20, 1, 4);
  put(want, 24, 16, 4);    // private segment bytes
  put(want, 28, 1024, 4);  // group segment bytes
  put(want, 32, 0x7f0000001000, 8);
  put(want, 40, 0x7f0000002000, 8);
  put(want, 56, 0x7f0000003000, 8);
  EXPECT_EQ(bytes_of(d.body), want);
  // publish() writes the body, then header and setup as one 32-bit store.
  alignas(64) std::array<uint8_t, 64> slot{};
  publish(slot.data(), &d.body, d.header, d.body.setup);
  put(want, 0, 0x1502, 2);
  EXPECT_EQ(slot, want);
  EXPECT_THROW(make_dispatch(1, 2, 1000, 256, 0, 0, 0), Error);  // not a whole number of groups
}

TEST(Aql, BarrierAndPacketMatchesTheHsaLayout) {
  uint64_t deps[2] = {0x1000, 0x2000};
  uint16_t header = 0;
  BarrierAndPacket p = make_barrier_and(deps, 2, 0x3000, &header);
  EXPECT_EQ(header, 0x1503);  // type 3 with the same bits
  std::array<uint8_t, 64> want{};
  put(want, 8, 0x1000, 8);
  put(want, 16, 0x2000, 8);
  put(want, 56, 0x3000, 8);
  EXPECT_EQ(bytes_of(p), want);
  EXPECT_THROW(make_barrier_and(deps, 6, 0, &header), Error);
}

// ---- code objects

std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

int64_t yaml_int(const std::string& notes, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(notes, m, std::regex("\\" + key + ":\\s+(\\d+)"))) return -1;
  return std::stoll(m[1]);
}

uint64_t symbol_value(const std::string& symbols, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(symbols, m, std::regex("([0-9a-f]{16})\\s+\\d+\\s+\\w+\\s+\\w+\\s+\\w+\\s+\\S+\\s+" + std::regex_replace(name, std::regex("\\."), "\\.") + "\\n")))
    return ~uint64_t{0};
  return std::stoull(m[1], nullptr, 16);
}

class CodeObjects : public ::testing::TestWithParam<std::string> {};

TEST_P(CodeObjects, LoaderAgreesWithLlvmReadelf) {
  Toolchain tools = find_toolchain();
  if (tools.clang.empty()) GTEST_SKIP() << "no clang for AMDGPU on PATH";
  std::string readelf = fs::path(tools.clang).parent_path() / ("llvm-readelf" + fs::path(tools.clang).filename().string().substr(5));
  // Two generated kernels: a tiled matmul with local memory and barriers, and an elementwise one.
  set_default_device("cpu");
  Tensor a = Tensor::rand({64, 64}).realize(), b = Tensor::rand({64, 64}).realize();
  Tensor c = (a.matmul(b) + 1).relu();
  std::vector<ScheduleItem> items = create_schedule({c.node().get()});
  Node* self = items[0].node;
  auto input_of = [self](Node* n) -> Buffer* { return n == self ? nullptr : n->buffer.get(); };
  LoweringOptions tiled;
  tiled.flatten_outer = true;
  tiled.local = {8, 8};
  tiled.upcast = {4, 4};
  tiled.stage_chunk = 16;
  LoweringOptions flat;
  flat.flatten_outer = true;
  for (const LoweringOptions& opt : {tiled, flat}) {
    Kernel k = lower_kernel(items[0].value, items[0].output.get(), input_of, opt).kernel;
    std::string source = render_c_family(k, AmdgpuDialect());
    std::vector<uint8_t> elf = compile_code_object(source, GetParam(), tools, (fs::temp_directory_path() / "lathe-co-test").string());
    CodeObject co = read_code_object(elf);
    EXPECT_EQ(co.target, "amdgcn-amd-amdhsa--" + GetParam());
    const KernelInfo& info = co.kernel(k.name);
    fs::path file = fs::temp_directory_path() / ("lathe-co-" + GetParam() + "-" + std::to_string(getpid()) + ".co");
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(elf.data()), static_cast<std::streamsize>(elf.size()));
    std::string notes = run("'" + readelf + "' --notes '" + file.string() + "'");
    std::string symbols = run("'" + readelf + "' -s --wide '" + file.string() + "'");
    fs::remove(file);
    EXPECT_EQ(info.kernarg_size, yaml_int(notes, ".kernarg_segment_size")) << notes;
    EXPECT_EQ(info.group_segment_size, yaml_int(notes, ".group_segment_fixed_size"));
    EXPECT_EQ(info.private_segment_size, yaml_int(notes, ".private_segment_fixed_size"));
    EXPECT_EQ(info.sgpr_count, yaml_int(notes, ".sgpr_count"));
    EXPECT_EQ(info.vgpr_count, yaml_int(notes, ".vgpr_count"));
    EXPECT_EQ(info.wavefront_size, yaml_int(notes, ".wavefront_size"));
    EXPECT_EQ(info.kernarg_size, k.params.size() * 8);  // one pointer per buffer
    if (opt.stage_chunk) EXPECT_GT(info.group_segment_size, 0u);  // local memory for the staged tiles
    // The descriptor, as our loader reads it, against the symbol table.
    EXPECT_EQ(info.descriptor_offset, symbol_value(symbols, k.name + ".kd")) << symbols;
    EXPECT_EQ(info.entry_offset, symbol_value(symbols, k.name));
    EXPECT_EQ(info.descriptor_offset + info.descriptor.kernel_code_entry_byte_offset, info.entry_offset);
    EXPECT_EQ(info.descriptor.kernarg_size, info.kernarg_size);
    EXPECT_EQ(info.descriptor.group_segment_fixed_size, info.group_segment_size);
    EXPECT_GT(info.code_size, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, CodeObjects, ::testing::Values("gfx90a", "gfx942", "gfx1100"),
                         [](const auto& info) { return info.param; });

TEST(CodeObjects, DamagedFilesAreRefusedWithAReason) {
  std::vector<uint8_t> junk = {'n', 'o', 't', ' ', 'e', 'l', 'f'};
  EXPECT_THROW(read_code_object(junk), Error);
  Toolchain tools = find_toolchain();
  if (tools.clang.empty()) GTEST_SKIP() << "no clang for AMDGPU on PATH";
  std::vector<uint8_t> elf = compile_code_object("__kernel void k(__global float* a) { a[0] = 1.0f; }", "gfx942", tools,
                                                 (fs::temp_directory_path() / "lathe-co-test").string());
  elf.resize(elf.size() / 2);  // truncated
  try {
    read_code_object(elf);
    ADD_FAILURE() << "truncated code object accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  try {
    compile_code_object("__kernel void k(__global float* a) { a[0] = undefined_thing; }", "gfx942", tools,
                        (fs::temp_directory_path() / "lathe-co-test").string());
    ADD_FAILURE() << "bad source compiled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("undefined_thing"), std::string::npos) << e.what();  // the compiler's message
  }
}

// ---- the KFD protocol against the test driver

GpuNode test_node(TestDriver& d) { return read_topology(d.topology_root()).at(0); }

TEST(KfdTestDriver, OpeningAGpuFollowsTheKfdSequence) {
  TestDriver d;
  {
    KfdGpu gpu(d, test_node(d));
    EXPECT_NE(gpu.description().find("gfx942"), std::string::npos);
  }
  std::vector<std::string> log = d.stats().ioctl_log;
  std::vector<std::string> head(log.begin(), log.begin() + 5);
  EXPECT_EQ(head, (std::vector<std::string>{"GET_VERSION", "AMDGPU_INFO", "AMDGPU_INFO", "ACQUIRE_VM", "ALLOC_MEMORY_OF_GPU"}));
  auto index = [&](const std::string& s) { return std::find(log.begin(), log.end(), s) - log.begin(); };
  EXPECT_LT(index("CREATE_EVENT"), index("CREATE_QUEUE"));
  EXPECT_LT(index("CREATE_QUEUE"), index("DESTROY_QUEUE"));
  EXPECT_EQ(d.stats().allocations_live, 0);  // everything freed on the way out
  EXPECT_EQ(log.back(), "FREE_MEMORY_OF_GPU");
}

TEST(KfdTestDriver, ArgumentsAreCheckedAsTheKernelDoes) {
  TestDriver d;
  int kfd = d.open("/dev/kfd", 0);
  void* va = d.mmap(nullptr, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  kfd_ioctl_alloc_memory_of_gpu_args a{reinterpret_cast<uint64_t>(va), 8192, 0, 0, kTestGpuId, KFD_IOC_ALLOC_MEM_FLAGS_VRAM};
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a), -EINVAL);  // before ACQUIRE_VM
  int drm = d.open("/dev/dri/renderD128", 0);
  kfd_ioctl_acquire_vm_args vm{static_cast<uint32_t>(drm), kTestGpuId + 1};
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ACQUIRE_VM, &vm), -EINVAL);  // unknown gpu_id
  vm.gpu_id = kTestGpuId;
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ACQUIRE_VM, &vm), 0);
  a.size = 100;
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a), -EINVAL);  // not whole pages
  a.size = 8192;
  a.flags = KFD_IOC_ALLOC_MEM_FLAGS_VRAM | KFD_IOC_ALLOC_MEM_FLAGS_GTT;
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a), -EINVAL);  // two memory types
  a.flags = KFD_IOC_ALLOC_MEM_FLAGS_VRAM;
  a.va_addr = 0x1000;
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a), -EINVAL);  // address space not reserved
  a.va_addr = reinterpret_cast<uint64_t>(va);
  ASSERT_EQ(d.ioctl(kfd, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a), 0);
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &a), -EINVAL);  // overlaps the first
  uint32_t gpus[1] = {kTestGpuId};
  kfd_ioctl_map_memory_to_gpu_args map{a.handle, reinterpret_cast<uint64_t>(gpus), 1, 0};
  ASSERT_EQ(d.ioctl(kfd, AMDKFD_IOC_MAP_MEMORY_TO_GPU, &map), 0);
  EXPECT_EQ(map.n_success, 1u);
  kfd_ioctl_free_memory_of_gpu_args f{a.handle};
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_FREE_MEMORY_OF_GPU, &f), -EBUSY);  // still mapped
  kfd_ioctl_create_queue_args q{};
  q.gpu_id = kTestGpuId;
  q.queue_type = KFD_IOC_QUEUE_TYPE_COMPUTE_AQL;
  q.ring_base_address = a.va_addr;
  q.ring_size = 3000;
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_CREATE_QUEUE, &q), -EINVAL);  // not a power of two
  q.ring_size = 4096;
  q.write_pointer_address = 0x10;
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_CREATE_QUEUE, &q), -EFAULT);  // pointers outside GPU memory
  kfd_ioctl_unmap_memory_from_gpu_args unmap{a.handle, reinterpret_cast<uint64_t>(gpus), 1, 0};
  ASSERT_EQ(d.ioctl(kfd, AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU, &unmap), 0);
  EXPECT_EQ(d.ioctl(kfd, AMDKFD_IOC_FREE_MEMORY_OF_GPU, &f), 0);
  EXPECT_EQ(d.munmap(va, 8192), 0);
  EXPECT_EQ(d.ioctl(kfd, 0xdead, &f), -EINVAL);
  EXPECT_EQ(d.close(drm), 0);
  EXPECT_EQ(d.close(kfd), 0);
}

TEST(KfdTestDriver, DispatchRunsTheTwinAndCompletesTheSignal) {
  Toolchain tools = find_toolchain();
  if (tools.clang.empty()) GTEST_SKIP() << "no clang for AMDGPU on PATH";
  TestDriver d;
  KfdGpu gpu(d, test_node(d));
  std::string src = "__kernel void twice(__global float* y, __global const float* x) {"
                    " long i = (long)__builtin_amdgcn_workgroup_id_x() * 256 + __builtin_amdgcn_workitem_id_x(); y[i] = 2.0f * x[i]; }";
  CodeObject co = read_code_object(compile_code_object(src, "gfx942", tools, (fs::temp_directory_path() / "lathe-co-test").string()));
  GpuMemory code = gpu.alloc(co.image.size(), MemoryKind::Gtt, true, true);
  std::vector<uint8_t> placed = co.placed_at(code.va);
  std::memcpy(code.host, placed.data(), placed.size());
  d.register_twin(co, "twice", 2, [](const std::vector<void*>& a, const uint8_t*, uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) static_cast<float*>(a[0])[i] = 2 * static_cast<const float*>(a[1])[i];
  });
  GpuMemory x = gpu.alloc(512 * 4, MemoryKind::Gtt, true), y = gpu.alloc(512 * 4, MemoryKind::Userptr, true);
  GpuMemory args = gpu.alloc(4096, MemoryKind::Gtt, true);
  for (int i = 0; i < 512; ++i) static_cast<float*>(x.host)[i] = static_cast<float>(i);
  uint64_t kernarg[2] = {y.va, x.va};
  std::memcpy(args.host, kernarg, sizeof kernarg);
  const KernelInfo& k = co.kernel("twice");
  gpu.dispatch(code.va + k.descriptor_offset, args.va, 512, 256, k.group_segment_size, k.private_segment_size);
  gpu.dispatch(code.va + k.descriptor_offset, args.va, 512, 256, k.group_segment_size, k.private_segment_size);
  gpu.wait_idle();
  for (int i = 0; i < 512; ++i) ASSERT_EQ(static_cast<float*>(y.host)[i], 2.0f * i);
  EXPECT_EQ(d.stats().dispatches, 2);
  // A kernel object that does not hold the registered code is refused, and the wait says why.
  gpu.dispatch(code.va + k.descriptor_offset + 64, args.va, 512, 256, 0, 0);
  try {
    gpu.wait_idle();
    ADD_FAILURE() << "a bad kernel object completed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kernel_object"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lathe::amd
