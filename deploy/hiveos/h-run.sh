#!/usr/bin/env bash
# Starts clminer with the config h-config.sh wrote; Hive runs this in a
# screen session and restarts it when it exits.
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
[[ -z $CUSTOM_NAME ]] && . ./h-manifest.conf
mkdir -p "$(dirname "$CUSTOM_LOG_BASENAME")"
./clminer mine --config "$CUSTOM_CONFIG_FILENAME" 2>&1 | tee -a "$CUSTOM_LOG_BASENAME.log"
