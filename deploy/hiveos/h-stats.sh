#!/usr/bin/env bash
# Sourced by Hive's agent: sets $khs (total kH/s) and $stats (Hive's JSON:
# hs, hs_units, temp, fan, uptime, ar, algo, ver) from
# clminer's /api/v1/status. Devices without NVML report temp and fan 0,
# as Hive's format has no "unknown".
[[ -z $CUSTOM_NAME ]] && . "$(dirname "${BASH_SOURCE[0]}")/h-manifest.conf"
stats_raw=$(curl --silent --max-time "${API_TIMEOUT:-5}" "http://${CLMINER_API_HOST:-127.0.0.1}:${CLMINER_API_PORT:-4048}/api/v1/status")
if [[ $? -ne 0 || -z $stats_raw ]]; then
  echo "h-stats: clminer API not answering on port ${CLMINER_API_PORT:-4048}" >&2
  khs=0
  stats="null"
else
  khs=$(jq -r '(.hashrate_60s // 0) / 1000' <<< "$stats_raw")
  stats=$(jq -c --arg algo "${CUSTOM_ALGO:-sha256d}" '
    . as $s
    | ([.gpus[]? | {key: .device, value: .}] | from_entries) as $g
    | {
        hs: [.devices[] | (.hashrate_60s / 1000)],
        hs_units: "khs",
        temp: [.devices[] | ($g[.id].sensors.temperature_c // 0)],
        fan: [.devices[] | ($g[.id].sensors.fan_percent // 0)],
        uptime: (.uptime_s | floor),
        ver: .version,
        ar: [.shares.accepted, .shares.rejected],
        algo: $algo
      }' <<< "$stats_raw")
fi
