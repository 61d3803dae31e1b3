#include "code_object.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <map>
#include <sys/wait.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "lathe/error.h"
#include "msgpack.h"

namespace lathe::amd {
namespace {

namespace fs = std::filesystem;

constexpr uint16_t kMachineAmdgpu = 224;
constexpr uint32_t kLoad = 1, kNoteType = 7, kSymtab = 2, kDynsym = 11, kRela = 4;
constexpr uint32_t kNoteAmdgpuMetadata = 32;
constexpr uint32_t kRelocRelative64 = 13;  // R_AMDGPU_RELATIVE64

class Elf {
 public:
  explicit Elf(const std::vector<uint8_t>& d) : d_(d) {
    if (d.size() < 64 || std::memcmp(d.data(), "\x7f" "ELF", 4) != 0) fail("not an ELF file");
    if (d[4] != 2 || d[5] != 1) fail("not a little-endian 64-bit ELF file");
    if (u16(18) != kMachineAmdgpu) fail("machine " + std::to_string(u16(18)) + " is not AMDGPU (224)");
  }
  [[noreturn]] static void fail(const std::string& what) { throw Error("amd_kfd: code object: " + what); }
  template <class T>
  T at(uint64_t off) const {
    if (off + sizeof(T) > d_.size()) fail("truncated: reading " + std::to_string(sizeof(T)) + " bytes at offset " + std::to_string(off) + " of " + std::to_string(d_.size()));
    T v;
    std::memcpy(&v, d_.data() + off, sizeof v);
    return v;
  }
  uint16_t u16(uint64_t o) const { return at<uint16_t>(o); }
  uint32_t u32(uint64_t o) const { return at<uint32_t>(o); }
  uint64_t u64(uint64_t o) const { return at<uint64_t>(o); }
  void need(uint64_t off, uint64_t n) const {
    if (off + n > d_.size() || off + n < off) fail("truncated: " + std::to_string(n) + " bytes at offset " + std::to_string(off));
  }
  const std::vector<uint8_t>& d_;
};

struct Section {
  uint32_t name, type;
  uint64_t addr, offset, size;
  uint32_t link;
  uint64_t entsize;
};

}  // namespace

const KernelInfo& CodeObject::kernel(const std::string& name) const {
  for (auto& k : kernels)
    if (k.name == name) return k;
  throw Error("amd_kfd: code object has no kernel named " + name);
}

std::vector<uint8_t> CodeObject::placed_at(uint64_t base) const {
  std::vector<uint8_t> out = image;
  for (auto& r : relocations) {
    uint64_t v = base + static_cast<uint64_t>(r.addend);
    std::memcpy(out.data() + r.offset, &v, 8);
  }
  return out;
}

CodeObject read_code_object(const std::vector<uint8_t>& bytes) {
  Elf e(bytes);
  CodeObject co;
  const uint64_t phoff = e.u64(32), shoff = e.u64(40);
  const uint16_t phentsize = e.u16(54), phnum = e.u16(56), shentsize = e.u16(58), shnum = e.u16(60);
  // Loadable segments, laid out at their virtual addresses.
  uint64_t end = 0;
  for (uint16_t i = 0; i < phnum; ++i) {
    uint64_t p = phoff + uint64_t{i} * phentsize;
    if (e.u32(p) == kLoad) end = std::max(end, e.u64(p + 16) + e.u64(p + 40));
  }
  if (end == 0 || end > (uint64_t{1} << 30)) Elf::fail("no loadable segment, or an implausible image size " + std::to_string(end));
  co.image.assign(end, 0);
  for (uint16_t i = 0; i < phnum; ++i) {
    uint64_t p = phoff + uint64_t{i} * phentsize;
    if (e.u32(p) != kLoad) continue;
    uint64_t off = e.u64(p + 8), vaddr = e.u64(p + 16), filesz = e.u64(p + 32);
    e.need(off, filesz);
    std::memcpy(co.image.data() + vaddr, bytes.data() + off, filesz);
  }
  std::vector<Section> sections;
  for (uint16_t i = 0; i < shnum; ++i) {
    uint64_t s = shoff + uint64_t{i} * shentsize;
    sections.push_back({e.u32(s), e.u32(s + 4), e.u64(s + 16), e.u64(s + 24), e.u64(s + 32), e.u32(s + 40), e.u64(s + 56)});
  }
  // Symbols: <name> is the machine code, <name>.kd the descriptor.
  std::map<std::string, std::pair<uint64_t, uint64_t>> symbols;  // value, size
  for (auto& s : sections) {
    if (s.type != kSymtab && s.type != kDynsym) continue;
    e.need(s.offset, s.size);
    const Section& strings = sections.at(s.link);
    for (uint64_t o = s.offset; o + 24 <= s.offset + s.size; o += 24) {
      uint32_t name = e.u32(o);
      uint64_t value = e.u64(o + 8), size = e.u64(o + 16);
      e.need(strings.offset + name, 1);
      const char* str = reinterpret_cast<const char*>(bytes.data() + strings.offset + name);
      size_t len = strnlen(str, strings.offset + strings.size - (strings.offset + name));
      if (len) symbols[std::string(str, len)] = {value, size};
    }
  }
  for (auto& s : sections) {
    if (s.type != kRela) continue;
    for (uint64_t o = s.offset; o + 24 <= s.offset + s.size; o += 24) {
      uint64_t offset = e.u64(o), info = e.u64(o + 8);
      int64_t addend = e.at<int64_t>(o + 16);
      if ((info & 0xffffffff) != kRelocRelative64) Elf::fail("unsupported relocation type " + std::to_string(info & 0xffffffff));
      if (offset + 8 > co.image.size()) Elf::fail("relocation outside the image");
      co.relocations.push_back({offset, addend});
    }
  }
  // Metadata: the AMDGPU note holds MessagePack.
  bool found = false;
  for (auto& s : sections) {
    if (s.type != kNoteType) continue;
    for (uint64_t o = s.offset; o + 12 <= s.offset + s.size;) {
      uint32_t namesz = e.u32(o), descsz = e.u32(o + 4), type = e.u32(o + 8);
      uint64_t name = o + 12, desc = name + ((namesz + 3) & ~3u);
      e.need(desc, descsz);
      if (type == kNoteAmdgpuMetadata && namesz >= 6 && std::memcmp(bytes.data() + name, "AMDGPU", 6) == 0) {
        MsgValue meta = parse_msgpack(bytes.data() + desc, descsz);
        found = true;
        if (const MsgValue* t = meta.find("amdhsa.target")) co.target = t->s;
        const MsgValue* list = meta.find("amdhsa.kernels");
        if (!list) Elf::fail("metadata has no amdhsa.kernels");
        for (const MsgValue& k : list->items) {
          KernelInfo info;
          if (const MsgValue* n = k.find(".name")) info.name = n->s;
          info.kernarg_size = static_cast<uint32_t>(k.integer(".kernarg_segment_size", 0));
          info.kernarg_align = static_cast<uint32_t>(k.integer(".kernarg_segment_align", 8));
          info.group_segment_size = static_cast<uint32_t>(k.integer(".group_segment_fixed_size", 0));
          info.private_segment_size = static_cast<uint32_t>(k.integer(".private_segment_fixed_size", 0));
          info.sgpr_count = static_cast<uint32_t>(k.integer(".sgpr_count", 0));
          info.vgpr_count = static_cast<uint32_t>(k.integer(".vgpr_count", 0));
          info.wavefront_size = static_cast<uint32_t>(k.integer(".wavefront_size", 64));
          info.max_flat_workgroup_size = static_cast<uint32_t>(k.integer(".max_flat_workgroup_size", 0));
          std::string kd = k.find(".symbol") ? k.find(".symbol")->s : info.name + ".kd";
          if (!symbols.count(kd) || !symbols.count(info.name)) Elf::fail("kernel " + info.name + " has no " + kd + " or code symbol");
          info.descriptor_offset = symbols[kd].first;
          info.entry_offset = symbols[info.name].first;
          info.code_size = symbols[info.name].second;
          if (info.descriptor_offset + sizeof(KernelDescriptor) > co.image.size()) Elf::fail("descriptor of " + info.name + " lies outside the image");
          std::memcpy(&info.descriptor, co.image.data() + info.descriptor_offset, sizeof info.descriptor);
          co.kernels.push_back(info);
        }
      }
      o = desc + ((descsz + 3) & ~3u);
    }
  }
  if (!found) Elf::fail("no NT_AMDGPU_METADATA note (was it built for amdgcn-amd-amdhsa?)");
  return co;
}

namespace {

std::string newest_on_path(const std::string& stem) {
  for (int v = 30; v >= 17; --v) {
    std::string name = stem + "-" + std::to_string(v);
    const char* path = std::getenv("PATH");
    std::string p = path ? path : "/usr/bin";
    size_t start = 0;
    while (start <= p.size()) {
      size_t colon = p.find(':', start);
      std::string dir = p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  return "";
}

// Runs a command, returning its exit status and combined output.
int run(const std::string& cmd, std::string& output) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) output.append(buf.data(), n);
  int status = pclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

Toolchain find_toolchain(const std::string& clang, const std::string& lld) {
  Toolchain t;
  const char* ec = std::getenv("LATHE_AMDGPU_CLANG");
  const char* el = std::getenv("LATHE_AMDGPU_LLD");
  t.clang = !clang.empty() ? clang : ec && *ec ? ec : newest_on_path("clang");
  t.lld = !lld.empty() ? lld : el && *el ? el : newest_on_path("ld.lld");
  return t;
}

std::vector<uint8_t> compile_code_object(const std::string& source, const std::string& target, const Toolchain& tools,
                                         const std::string& work_dir, const std::string& extra_flags) {
  if (tools.clang.empty() || tools.lld.empty())
    throw Error("amd_kfd: no clang/ld.lld for AMDGPU code objects found (install clang-19 lld-19, or set LATHE_AMDGPU_CLANG "
                "and LATHE_AMDGPU_LLD, or the backend options clang and lld)");
  fs::create_directories(work_dir);
  static std::atomic<int> counter{0};
  std::string stem = (fs::path(work_dir) / ("k" + std::to_string(getpid()) + "_" + std::to_string(counter++))).string();
  std::ofstream(stem + ".cl") << source;
  std::string out;
  std::string compile = "'" + tools.clang + "' -x cl -cl-std=CL1.2 -Xclang -finclude-default-header -target amdgcn-amd-amdhsa -mcpu=" +
                        target + " -nogpulib -O3 " + extra_flags + " -c '" + stem + ".cl' -o '" + stem + ".o'";
  std::string link = "'" + tools.lld + "' -shared --no-undefined '" + stem + ".o' -o '" + stem + ".co'";
  if (run(compile, out) != 0 || run(link, out) != 0)
    throw Error("amd_kfd: building a code object for " + target + " failed (source: " + stem + ".cl):\n" + out);
  std::ifstream in(stem + ".co", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::error_code ec;
  fs::remove(stem + ".cl", ec);
  fs::remove(stem + ".o", ec);
  fs::remove(stem + ".co", ec);
  return bytes;
}

}  // namespace lathe::amd
