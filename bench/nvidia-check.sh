#!/usr/bin/env bash
# The NVIDIA check of issue 3, as one short script for the device machine
# (DEVELOPERS.md, the `device` tool): make the NVIDIA OpenCL driver visible,
# then `clminer devices`, `selftest` and `bench` on the GPU. Build here first,
# with an ICD loader beside the binary in case the machine's image has none:
#
#   make build && cp /usr/lib/x86_64-linux-gnu/libOpenCL.so.1 bin/
#   run(command="bench/nvidia-check.sh", carry=["bin"], timeout_s=300)
#
# Everything it prints is also written under $OUT, which comes back.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/nvidia-check}
mkdir -p "$out"

# A private ICD directory naming the driver by absolute path, so the loader
# finds it whatever the image's /etc/OpenCL holds; the driver needs its
# libnvidia-nvvm beside it and a glibc at least as new as the one it was
# built against, so both are shown first.
nv=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 /{print $NF; exit}')
echo "== libnvidia-opencl: ${nv:-not found}; nvvm: $(ldconfig -p 2>/dev/null | awk '/libnvidia-nvvm\.so/{print $NF; exit}'); $(ldd --version 2>&1 | head -1)" | tee "$out/env.txt"
if [ -n "$nv" ]; then
  mkdir -p "$out/icd"
  echo "$nv" > "$out/icd/nvidia.icd"
  export OCL_ICD_VENDORS="$out/icd"
fi
if ! ldconfig -p 2>/dev/null | grep -q 'libOpenCL\.so\.1 '; then
  export LD_LIBRARY_PATH="$PWD/bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# The CPU time of each step shows whether the host still spins on a core
# per GPU while kernels run (the device sleeps through most of each batch).
TIMEFORMAT='== wall %R s, user %U s, sys %S s'
step() { echo "== $*"; time "$@"; echo "== exit $?"; }
{
  step nvidia-smi -L
  step bin/clminer devices
  step bin/clminer selftest --device gpu
  step timeout 60 bin/clminer bench --device gpu --duration 20s --json
  step timeout 60 bin/clminer bench --device gpu --duration 20s --kernel-ms 20 --json
  # Issue 13: single- vs multi-version, both Maj shapes, fixed intensities.
  step timeout 40 bin/clminer bench --device gpu --duration 15s --version-rolling=false --json
  step timeout 40 bin/clminer bench --device gpu --duration 15s --kernel-versions 2 --json
  step timeout 40 bin/clminer bench --device gpu --duration 15s --kernel-maj merge --json
  step timeout 40 bin/clminer bench --device gpu --duration 15s --kernel-maj merge --version-rolling=false --json
  step timeout 40 bin/clminer bench --device gpu --duration 15s -I 28 --json
  step timeout 40 bin/clminer bench --device gpu --duration 15s -I 31 --json
} 2>&1 | tee "$out/nvidia-check.txt"
