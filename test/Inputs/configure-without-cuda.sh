#!/bin/sh
# Configures the project with the CUDA toolkit hidden (an empty tmpfs over
# its directory, in a private mount namespace) and checks that the CPU
# product still configures, saying that the CUDA target is off.
# usage: configure-without-cuda.sh SOURCE_DIR CUDA_ROOT WORK_DIR
# Exits 77 (skipped) where mount namespaces are not allowed.
set -eu
source=$1 cuda=$2 work=$3
if ! unshare -m sh -c "mount -t tmpfs none '$cuda'" 2>/dev/null; then
  echo "skipped: cannot hide $cuda here (unshare -m needs root)"
  exit 77
fi
rm -rf "$work"
unshare -m sh -c "mount -t tmpfs none '$cuda' &&
  PATH=\$(echo \"\$PATH\" | tr ':' '\n' | grep -v '^$cuda' | paste -sd:) &&
  cmake -S '$source' -B '$work' -G Ninja -DCMAKE_BUILD_TYPE=Release" > "$work.log" 2>&1 || {
  cat "$work.log"
  echo "error: configuring without the CUDA toolkit failed"
  exit 1
}
grep -q "CUDA target: off, no CUDA toolkit (12.5 or later) with nvcc and NCCL was found" "$work.log" || {
  cat "$work.log"
  echo "error: the configure log does not say that the CUDA target is off"
  exit 1
}
if grep -q moert_cuda "$work/build.ninja"; then
  echo "error: the build without the toolkit still builds moert_cuda"
  exit 1
fi
echo "configured without CUDA: the CPU target builds alone"
rm -rf "$work" "$work.log"
