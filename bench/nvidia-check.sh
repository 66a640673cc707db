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

if [ ! -e /etc/OpenCL/vendors/nvidia.icd ]; then
  mkdir -p /etc/OpenCL/vendors
  echo libnvidia-opencl.so.1 > /etc/OpenCL/vendors/nvidia.icd
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
} 2>&1 | tee "$out/nvidia-check.txt"
