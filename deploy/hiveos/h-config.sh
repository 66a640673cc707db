#!/usr/bin/env bash
# Writes clminer's config file from the flight sheet. Hive sets CUSTOM_URL
# (one pool per line or space separated), CUSTOM_TEMPLATE (wallet.worker),
# CUSTOM_PASS and CUSTOM_USER_CONFIG (extra YAML settings, one per line,
# e.g. "temp-target: 75").
[[ -z $CUSTOM_NAME ]] && . "$(dirname "${BASH_SOURCE[0]}")/h-manifest.conf"
[[ -z $CUSTOM_TEMPLATE ]] && echo "h-config: no wallet.worker (CUSTOM_TEMPLATE) in the flight sheet" >&2 && exit 1
[[ -z $CUSTOM_URL ]] && echo "h-config: no pool URL (CUSTOM_URL) in the flight sheet" >&2 && exit 1

yaml_quote() { # single-quoted YAML scalar: '' inside
  printf "'%s'" "${1//\'/\'\'}"
}

{
  echo "# written by h-config.sh from the Hive flight sheet"
  echo "pools:"
  for url in $CUSTOM_URL; do
    [[ $url != *://* ]] && url="stratum+tcp://$url"
    echo "  - url: $(yaml_quote "$url")"
    echo "    user: $(yaml_quote "$CUSTOM_TEMPLATE")"
    echo "    pass: $(yaml_quote "${CUSTOM_PASS:-x}")"
  done
  echo "api-listen: 127.0.0.1:${CLMINER_API_PORT:-4048}"
  echo "cgminer-api: 127.0.0.1:${CLMINER_CGMINER_PORT:-4028}"
  [[ -n $CUSTOM_USER_CONFIG ]] && echo "$CUSTOM_USER_CONFIG"
} > "$CUSTOM_CONFIG_FILENAME"
