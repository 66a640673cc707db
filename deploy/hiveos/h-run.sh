#!/usr/bin/env bash
# Starts clminer with the config h-config.sh wrote; Hive runs this in the
# miner's screen window and starts it again when it exits.
#
# No pipe: clminer appends its log to $CUSTOM_LOG_BASENAME.log itself
# (log-file: in the config) and reopens it on SIGHUP. `miner stop` sends
# Ctrl+C to the window, which signals every process in it: a `| tee` would
# end at once and take clminer down mid-drain; alone, clminer waits up to
# drain-timeout for verdicts on shares in flight and logs its summary.
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
. ./h-manifest.conf
mkdir -p "$(dirname "$CUSTOM_LOG_BASENAME")"
./clminer mine --config "$CUSTOM_CONFIG_FILENAME"
