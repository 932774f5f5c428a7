# The CUDA target (runtime/cuda, moe-compile --target cuda) builds when the
# CUDA toolkit is found; without it the CPU product builds and tests alone.
# MOE_CUDA: AUTO (build it when the toolkit is there), ON (require it), OFF.
set(MOE_CUDA AUTO CACHE STRING "Build the CUDA target: AUTO, ON or OFF")
set_property(CACHE MOE_CUDA PROPERTY STRINGS AUTO ON OFF)
set(MOE_HAVE_CUDA OFF)
if(MOE_SANITIZE OR MOE_FUZZ)
  # nvcc takes neither clang's sanitizers nor libFuzzer.
  message(STATUS "CUDA target: off in sanitizer and fuzzer builds")
elseif(MOE_CUDA STREQUAL "OFF")
  message(STATUS "CUDA target: off (MOE_CUDA=OFF)")
else()
  # 12.5 first has cudaGetDriverEntryPointByVersion, through which the
  # runtime reaches the driver's TMA tensor-map encoder.
  find_package(CUDAToolkit 12.5)
  find_library(MOE_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR})
  if(CUDAToolkit_FOUND AND CUDAToolkit_NVCC_EXECUTABLE AND MOE_NCCL_LIBRARY)
    set(MOE_HAVE_CUDA ON)
    if(NOT CMAKE_CUDA_COMPILER)
      set(CMAKE_CUDA_COMPILER ${CUDAToolkit_NVCC_EXECUTABLE})
    endif()
    # SASS for A100 and H100/H200, and PTX that later GPUs JIT.
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 80-real 90a-real 90-virtual)
    endif()
    # For scripts/gpu-check.sh, whose bundles say what they run on.
    string(REPLACE ";" " " MOE_CUDA_ARCHITECTURES_LINE
      "${CMAKE_CUDA_ARCHITECTURES}")
    file(WRITE ${PROJECT_BINARY_DIR}/cuda-architectures
      "${MOE_CUDA_ARCHITECTURES_LINE}\n")
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    # Source lines for compute-sanitizer's and ncu's reports; the code is
    # the same.
    add_compile_options($<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)
    if(CCACHE_PROGRAM)
      set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
    endif()
    message(STATUS "CUDA target: on (CUDA ${CUDAToolkit_VERSION}, "
                   "${CUDAToolkit_NVCC_EXECUTABLE}, ${MOE_NCCL_LIBRARY})")
  elseif(MOE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MOE_CUDA=ON, but no CUDA toolkit (12.5 or later) "
                        "with nvcc and NCCL was found (set CUDAToolkit_ROOT)")
  else()
    message(STATUS "CUDA target: off, no CUDA toolkit (12.5 or later) "
                   "with nvcc and NCCL was found (set CUDAToolkit_ROOT to build it); the CPU "
                   "target builds alone")
  endif()
endif()
