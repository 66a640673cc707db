// Package nvml reads NVIDIA GPU sensors (temperature, power, fan, clocks,
// utilisation) through NVML into device.Reading (work/device), for the
// status API, metrics and thermal limits. NVML is loaded at run time
// (github.com/NVIDIA/go-nvml dlopens libnvidia-ml.so.1 in Init), like the
// OpenCL runtime, so one binary runs on rigs with and without the NVIDIA
// driver: without it Open says why and the miner runs with no telemetry,
// never with zeros that look like readings.
//
// Everything else sees NVML through the Library interface, so tests and CI
// (no NVIDIA driver) use Fake.
package nvml
