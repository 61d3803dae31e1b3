// How much host time one clEnqueueNDRangeKernel costs on the first OpenCL device, by how its
// buffer arguments are made (separate buffers, sub-buffers of one parent, one buffer bound to
// every argument, or one buffer and offsets into it) and whether the kernel reads them all. Build: cc -O2 scripts/opencl_enqueue_cost.c -lOpenCL
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

static cl_kernel build(cl_context ctx, cl_device_id device, const char* src) {
  cl_int err;
  cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
  if (clBuildProgram(prog, 1, &device, NULL, NULL, NULL)) printf("build failed:\n%s\n", src);
  return clCreateKernel(prog, "k", &err);
}

static void time_enqueues(cl_command_queue q, cl_kernel kern, const char* what) {
  size_t global = 64;
  for (int i = 0; i < 200; ++i) clEnqueueNDRangeKernel(q, kern, 1, NULL, &global, NULL, 0, NULL, NULL);
  clFinish(q);
  double t0 = now();
  for (int i = 0; i < kLaunches; ++i) clEnqueueNDRangeKernel(q, kern, 1, NULL, &global, NULL, 0, NULL, NULL);
  double issued = now() - t0;
  clFinish(q);
  printf("%-64s %.2f us per enqueue\n", what, issued / kLaunches * 1e6);
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
  // Kernels of 32 buffer arguments reading only the first or every one of them, and one of a
  // buffer and 32 offsets into it reading every offset.
  char one[8192] = "__kernel void k(", all[8192] = "__kernel void k(", offsets[8192] = "__kernel void k(__global float* b";
  for (int i = 0; i < kArgs; ++i) {
    sprintf(one + strlen(one), "%s__global float* b%d", i ? ", " : "", i);
    sprintf(all + strlen(all), "%s__global float* b%d", i ? ", " : "", i);
    sprintf(offsets + strlen(offsets), ", ulong o%d", i);
  }
  strcat(one, ") { if (get_global_id(0) == 0) b0[0] += 1.0f; }");
  strcat(all, ") { if (get_global_id(0) == 0) b0[0] += 1.0f");
  strcat(offsets, ") { if (get_global_id(0) == 0) b[o0] += 1.0f");
  for (int i = 1; i < kArgs; ++i) {
    sprintf(all + strlen(all), " + b%d[1]", i);
    sprintf(offsets + strlen(offsets), " + b[o%d + 1]", i);
  }
  strcat(all, "; }");
  strcat(offsets, "; }");
  cl_kernel kone = build(ctx, device, one), kall = build(ctx, device, all), koff = build(ctx, device, offsets);
  cl_int err;
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
  cl_kernel kernels[] = {kone, kall};
  const char* reads[] = {"read: the first", "read: all"};
  for (int k = 0; k < 2; ++k)
    for (int mode = 0; mode < 3; ++mode) {
      for (int i = 0; i < kArgs; ++i)
        clSetKernelArg(kernels[k], i, sizeof(cl_mem), mode == 0 ? &separate[i] : mode == 1 ? &sub[i] : &separate[0]);
      char what[128];
      snprintf(what, sizeof what, "%d arguments, %s, %s", kArgs, names[mode], reads[k]);
      time_enqueues(q, kernels[k], what);
    }
  clSetKernelArg(koff, 0, sizeof(cl_mem), &parent);
  for (int i = 0; i < kArgs; ++i) {
    cl_ulong o = (cl_ulong)i * (bytes + slot) / slot * slot / 4;
    clSetKernelArg(koff, i + 1, sizeof o, &o);
  }
  time_enqueues(q, koff, "one buffer and 32 offsets into it, read: all");
  return 0;
}
