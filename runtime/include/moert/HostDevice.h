//===- HostDevice.h - code that host and device compile ---------*- C++ -*-===//
//
// Row math that both targets run is written once; nvcc compiles it for the
// device as well when it is marked MOERT_HOST_DEVICE.
//
//===----------------------------------------------------------------------===//

#ifndef MOERT_HOSTDEVICE_H
#define MOERT_HOSTDEVICE_H

#if defined(__CUDACC__)
#define MOERT_HOST_DEVICE __host__ __device__
#else
#define MOERT_HOST_DEVICE
#endif

#endif // MOERT_HOSTDEVICE_H
