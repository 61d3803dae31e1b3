// How much host time one clEnqueueNDRangeKernel costs on the first OpenCL device, by how its
// buffer arguments are made: separate buffers, sub-buffers of one parent, or one buffer bound
// to every argument. Build: cc -O2 scripts/opencl_enqueue_cost.c -lOpenCL
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { kArgs = 32, kLaunches = 2000 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  clGetPlatformIDs(1, &platform, NULL);
  clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL);
  cl_uint align_bits = 0;
  clGetDeviceInfo(device, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
  cl_context ctx = clCreateContext(NULL, 1, &device, NULL, NULL, NULL);
  cl_command_queue q = clCreateCommandQueueWithProperties(ctx, device, NULL, NULL);
  char src[8192] = "__kernel void k(";
  for (int i = 0; i < kArgs; ++i) sprintf(src + strlen(src), "%s__global float* b%d", i ? ", " : "", i);
  strcat(src, ") { if (get_global_id(0) == 0) b0[0] += 1.0f; }");
  const char* s = src;
  cl_program prog = clCreateProgramWithSource(ctx, 1, &s, NULL, NULL);
  clBuildProgram(prog, 1, &device, NULL, NULL, NULL);
  cl_int err;
  cl_kernel kern = clCreateKernel(prog, "k", &err);
  const size_t slot = (align_bits / 8 > 4096 ? align_bits / 8 : 4096), bytes = 1 << 20;
  cl_mem separate[kArgs], sub[kArgs];
  cl_mem parent = clCreateBuffer(ctx, CL_MEM_READ_WRITE, kArgs * (bytes + slot), NULL, &err);
  for (int i = 0; i < kArgs; ++i) {
    separate[i] = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    cl_buffer_region r = {i * (bytes + slot) / slot * slot, bytes};
    sub[i] = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r, &err);
    if (err) printf("sub-buffer %d: error %d\n", i, err);
  }
  const char* names[] = {"separate buffers", "sub-buffers of one parent", "one buffer bound to every argument"};
  for (int mode = 0; mode < 3; ++mode) {
    for (int i = 0; i < kArgs; ++i) clSetKernelArg(kern, i, sizeof(cl_mem), mode == 0 ? &separate[i] : mode == 1 ? &sub[i] : &separate[0]);
    size_t global = 64;
    for (int i = 0; i < 200; ++i) clEnqueueNDRangeKernel(q, kern, 1, NULL, &global, NULL, 0, NULL, NULL);
    clFinish(q);
    double t0 = now();
    for (int i = 0; i < kLaunches; ++i) clEnqueueNDRangeKernel(q, kern, 1, NULL, &global, NULL, 0, NULL, NULL);
    double issued = now() - t0;
    clFinish(q);
    printf("%-36s %d buffer arguments: %.2f us per enqueue\n", names[mode], kArgs, issued / kLaunches * 1e6);
  }
  return 0;
}
