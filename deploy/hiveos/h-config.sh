#!/usr/bin/env bash
# Writes clminer's config file from the flight sheet. Hive's miner-run
# sources this file (it may also be run as a script) with the flight sheet
# in CUSTOM_URL (pools, one per line or space separated), CUSTOM_TEMPLATE
# (wallet.worker), CUSTOM_PASS and CUSTOM_USER_CONFIG ("Extra config
# arguments": YAML settings, one per line, e.g. "temp-target: 75").
#
# A top-level key in the extra config replaces the one this script would
# write (pools, api-listen, cgminer-api, log-file): YAML allows no key twice,
# and an operator who opens the API to the LAN
# (api-listen: 0.0.0.0:4048 with api-token: ...) means to replace the
# loopback default. h-stats.sh reads the API address back from the file.
#
# Sourced, it returns rather than exits (exit would end Hive's miner-run);
# every name it defines starts with clminer_.

clminer_yaml_quote() { # a single-quoted YAML scalar: ' doubled inside
  printf "'%s'" "${1//\'/\'\'}"
}

clminer_h_config() {
  [[ -z $CUSTOM_CONFIG_FILENAME ]] && . "$(dirname "${BASH_SOURCE[0]}")/h-manifest.conf"
  if [[ -z $CUSTOM_CONFIG_FILENAME ]]; then
    echo "h-config: CUSTOM_CONFIG_FILENAME is not set (h-manifest.conf)" >&2
    return 1
  fi
  # The flight sheet's text box may send CRLF line ends.
  local extra=${CUSTOM_USER_CONFIG//$'\r'/}
  local user_keys=" " line
  while IFS= read -r line; do
    [[ $line =~ ^([A-Za-z0-9_-]+)[[:space:]]*: ]] && user_keys+="${BASH_REMATCH[1]} "
  done <<< "$extra"

  local pools=
  if [[ $user_keys != *" pools "* ]]; then
    if [[ -z $CUSTOM_URL ]]; then
      echo "h-config: no pool URL (CUSTOM_URL) in the flight sheet" >&2
      rm -f "$CUSTOM_CONFIG_FILENAME" # never mine on a stale config
      return 1
    fi
    if [[ -z $CUSTOM_TEMPLATE ]]; then
      echo "h-config: no wallet.worker (CUSTOM_TEMPLATE) in the flight sheet" >&2
      rm -f "$CUSTOM_CONFIG_FILENAME"
      return 1
    fi
    local url
    pools="pools:"$'\n'
    for url in $CUSTOM_URL; do
      [[ $url != *://* ]] && url="stratum+tcp://$url"
      pools+="  - url: $(clminer_yaml_quote "$url")"$'\n'
      pools+="    user: $(clminer_yaml_quote "$CUSTOM_TEMPLATE")"$'\n'
      pools+="    pass: $(clminer_yaml_quote "${CUSTOM_PASS:-x}")"$'\n'
    done
  fi

  local tmp="$CUSTOM_CONFIG_FILENAME.tmp"
  {
    echo "# written by h-config.sh from the Hive flight sheet"
    printf '%s' "$pools"
    [[ $user_keys == *" api-listen "* ]] || echo "api-listen: 127.0.0.1:${CLMINER_API_PORT:-4048}"
    [[ $user_keys == *" cgminer-api "* ]] || echo "cgminer-api: 127.0.0.1:${CLMINER_CGMINER_PORT:-4028}"
    # clminer writes its log itself: no pipe in h-run.sh that a Ctrl+C
    # could break mid-drain.
    [[ $user_keys == *" log-file "* ]] || echo "log-file: $(clminer_yaml_quote "$CUSTOM_LOG_BASENAME.log")"
    if [[ -n $extra ]]; then
      echo "# extra config arguments"
      printf '%s\n' "$extra"
    fi
  } > "$tmp" && mv -f "$tmp" "$CUSTOM_CONFIG_FILENAME" || {
    echo "h-config: could not write $CUSTOM_CONFIG_FILENAME" >&2
    rm -f "$tmp"
    return 1
  }
  return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  clminer_h_config
  exit $?
fi
clminer_h_config
