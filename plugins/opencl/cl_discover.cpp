#include "cl_discover.h"

#include <CL/cl_ext.h>  // CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no platform

#include <stdexcept>

namespace lathe::opencl {
namespace {

// A string property through clGetDeviceInfo or clGetPlatformInfo (size first, then the text).
template <class Handle, class Info>
std::string info_string(cl_int (*get)(Handle, Info, size_t, void*, size_t*), Handle h, Info what) {
  size_t n = 0;
  get(h, what, 0, nullptr, &n);
  std::string s(n, '\0');
  get(h, what, n, s.data(), nullptr);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

}  // namespace

std::string device_string(cl_device_id d, cl_device_info what) { return info_string(clGetDeviceInfo, d, what); }
std::string platform_string(cl_platform_id p, cl_platform_info what) { return info_string(clGetPlatformInfo, p, what); }

std::string build_log(cl_program program, cl_device_id device) {
  size_t n = 0;
  clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
  std::string log(n, '\0');
  clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, n, log.data(), nullptr);
  return log;
}

std::string program_binary(cl_program program) {
  size_t size = 0;
  clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, nullptr);
  std::string bytes(size, '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(bytes.data());
  if (size == 0 || clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof p, &p, nullptr) != CL_SUCCESS) return "";
  return bytes;
}

std::vector<Found> discover(const std::string& platform_filter) {
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, nullptr, &np);
  if (e == CL_PLATFORM_NOT_FOUND_KHR || np == 0) return {};
  if (e != CL_SUCCESS) throw std::runtime_error("opencl: clGetPlatformIDs failed: OpenCL error " + std::to_string(e));
  std::vector<cl_platform_id> platforms(np);
  clGetPlatformIDs(np, platforms.data(), nullptr);
  std::vector<Found> out;
  for (cl_uint i = 0; i < np; ++i) {
    std::string name = platform_string(platforms[i], CL_PLATFORM_NAME);
    if (!platform_filter.empty() && name.find(platform_filter) == std::string::npos && platform_filter != std::to_string(i)) continue;
    cl_uint nd = 0;
    if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
    std::vector<cl_device_id> devices(nd);
    clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, nd, devices.data(), nullptr);
    for (auto d : devices) out.push_back({platforms[i], d, name, device_string(d, CL_DEVICE_NAME)});
  }
  return out;
}

}  // namespace lathe::opencl
