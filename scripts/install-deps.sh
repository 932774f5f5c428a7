#!/usr/bin/env bash
# Installs the Debian 12 packages the project builds and tests with. Safe to
# run again: apt skips what is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache python3 git
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools
  nlohmann-json3-dev libfmt-dev libgtest-dev libdnnl-dev zlib1g-dev
  libopenmpi-dev openmpi-bin
  clang libclang-rt-14-dev libomp-14-dev
  fortunes-min fortunes
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
