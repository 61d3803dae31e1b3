// lathe_opencl_compiler: builds one OpenCL C source for one device, in a process of its own,
// and writes the program binary. The opencl backend starts several at once for a batch of new
// kernels, because a driver may build one program at a time per process (NVIDIA's does).
//   lathe_opencl_compiler PLATFORM DEVICE OPTIONS SOURCE BINARY
// PLATFORM and DEVICE are exact names. Exit status 0: BINARY written (through a temporary file
// and a rename, so readers never see half of it); 1: the build failed (its log on stderr);
// 2: bad arguments, no such device or an unreadable source.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <unistd.h>

#include "cl_discover.h"

int main(int argc, char** argv) {
  using namespace lathe::opencl;
  if (argc != 6) {
    std::cerr << "usage: lathe_opencl_compiler PLATFORM DEVICE OPTIONS SOURCE BINARY\n";
    return 2;
  }
  const std::string platform = argv[1], device = argv[2], options = argv[3], source_path = argv[4], binary_path = argv[5];
  std::ifstream in(source_path);
  if (!in) {
    std::cerr << "lathe_opencl_compiler: cannot read " << source_path << "\n";
    return 2;
  }
  const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    for (const Found& f : discover()) {
      if (f.platform_name != platform || f.device_name != device) continue;
      cl_int e;
      cl_context context = clCreateContext(nullptr, 1, &f.device, nullptr, nullptr, &e);
      if (e != CL_SUCCESS) break;
      const char* text = source.c_str();
      cl_program program = clCreateProgramWithSource(context, 1, &text, nullptr, &e);
      if (e != CL_SUCCESS) break;
      if (clBuildProgram(program, 1, &f.device, options.c_str(), nullptr, nullptr) != CL_SUCCESS) {
        std::cerr << build_log(program, f.device);
        return 1;
      }
      const std::string bytes = program_binary(program);
      if (bytes.empty()) break;
      const std::string tmp = binary_path + ".tmp" + std::to_string(getpid());
      std::ofstream(tmp, std::ios::binary) << bytes;
      std::filesystem::rename(tmp, binary_path);
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  std::cerr << "lathe_opencl_compiler: no usable device '" << device << "' on a platform '" << platform << "'\n";
  return 2;
}
