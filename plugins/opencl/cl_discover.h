// Finding OpenCL devices and reading back what they built, shared by the opencl backend and its
// compiler helper process.
#pragma once
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <string>
#include <vector>

namespace lathe::opencl {

struct Found {
  cl_platform_id platform;
  cl_device_id device;
  std::string platform_name, device_name;
};

// Every device of every platform, in order; `platform_filter` keeps platforms whose name
// contains it (or whose index it is). Throws std::runtime_error when the ICD loader fails.
std::vector<Found> discover(const std::string& platform_filter = "");

std::string device_string(cl_device_id d, cl_device_info what);
std::string platform_string(cl_platform_id p, cl_platform_info what);

// The build log of `program` for `device`.
std::string build_log(cl_program program, cl_device_id device);
// The binary of a program built for one device; empty when the driver gives none.
std::string program_binary(cl_program program);

}  // namespace lathe::opencl
