#!/usr/bin/env bash
# Sourced by Hive's agent: sets $khs (total kH/s) and $stats (Hive's JSON)
# from clminer's /api/v1/status. Never exits: that would end the agent.
#
# stats: hs (kH/s per device), hs_units, temp and fan per device (null where
# NVML has no reading: Hive then shows its own), bus_numbers (each device's
# PCI bus in decimal, null for the CPU: Hive matches devices to its GPU list
# by bus, not by position), uptime, ver, ar ([accepted, rejected, hardware
# errors]) and algo.
#
# The API's address (and token, if any) is read from the config file
# h-config.sh wrote, so an api-listen: set in the flight sheet's extra
# config is followed.
[[ -z $CUSTOM_CONFIG_FILENAME ]] && . "$(dirname "${BASH_SOURCE[0]}")/h-manifest.conf"

clminer_yaml_value() { # top-level "key: value" of a plain YAML file, unquoted
  local line v
  line=$(grep -E "^$1[[:space:]]*:" "$2" 2>/dev/null | tail -n 1)
  [[ -z $line ]] && return 1
  v=${line#*:}
  v=${v#"${v%%[![:space:]]*}"}
  case $v in
    \'*) v=${v#\'}; v=${v%%\'*} ;;
    \"*) v=${v#\"}; v=${v%%\"*} ;;
    *) v=${v%%[[:space:]]#*}; v=${v%"${v##*[![:space:]]}"} ;;
  esac
  printf '%s' "$v"
}

clminer_stats() {
  local listen token host port
  listen=$(clminer_yaml_value api-listen "$CUSTOM_CONFIG_FILENAME")
  token=$(clminer_yaml_value api-token "$CUSTOM_CONFIG_FILENAME")
  [[ -z $listen ]] && listen="127.0.0.1:${CLMINER_API_PORT:-4048}"
  host=${listen%:*}
  port=${listen##*:}
  case $host in
    "" | 0.0.0.0 | "[::]" | ::) host=127.0.0.1 ;; # all interfaces: loopback is one
  esac
  # The token goes to curl on stdin (-H @-), never on its command line,
  # which any local user can read in ps.
  local raw
  raw=$(printf 'Authorization: Bearer %s\n' "$token" | curl --silent --fail --max-time "${API_TIMEOUT:-5}" \
    ${token:+-H @-} "http://$host:$port/api/v1/status")
  if [[ $? -ne 0 || -z $raw ]]; then
    echo "h-stats: clminer API not answering on $host:$port" >&2
    khs=0
    stats="null"
    return
  fi
  khs=$(jq -r '(.hashrate_60s // 0) / 1000' <<< "$raw")
  stats=$(jq -c --arg algo "${CUSTOM_ALGO:-sha256d}" '
    def hexnum: ascii_downcase | explode | reduce .[] as $c (0;
      if . == null then null
      elif $c >= 48 and $c <= 57 then . * 16 + $c - 48
      elif $c >= 97 and $c <= 102 then . * 16 + $c - 87
      else null end);
    # "0000:0a:00.0" -> 10
    def bus: if type == "string" then (split(":") | if length >= 3 then .[length - 2] | hexnum else null end) else null end;
    ([.gpus[]? | {key: .device, value: .sensors}] | from_entries) as $g
    | {
        hs: [.devices[] | (.hashrate_60s / 1000)],
        hs_units: "khs",
        temp: [.devices[] | ($g[.id].temperature_c // null)],
        fan: [.devices[] | ($g[.id].fan_percent // null)],
        bus_numbers: [.devices[] | (.pci_bus_id | bus)],
        uptime: (.uptime_s | floor),
        ver: .version,
        ar: [.shares.accepted, .shares.rejected, .shares.hw_errors],
        algo: $algo
      }' <<< "$raw")
}

clminer_stats
