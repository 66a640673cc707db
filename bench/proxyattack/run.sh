#!/usr/bin/env bash
# run.sh CLMINER PROXYATTACK SCENARIO [attack flags...]
#
# One measurement: the built-in pool (proxyattack pool, extranonce2_size 4:
# 256 prefixes, a clean job every 10 minutes), `CLMINER proxy` in front of
# it, an honest `CLMINER mine --device cpu --threads 1` behind it, and the
# attack SCENARIO (none, ping, subclose, subhold, idle) for 60 s; a second
# honest miner (the newcomer) starts 10 s into the attack. Prints one JSON
# line: the proxy's RSS before, at most during and 15 s after the attack,
# the honest miner's submit round trips during it (from its share log), how
# soon the newcomer got a share accepted, and the attack's own counts.
set -euo pipefail
BIN=$1 PA=$2 SCEN=$3
shift 3
OUT=$(mktemp -d /tmp/proxyattack.XXXXXX)
POOL=127.0.0.1:23333 PROXY=127.0.0.1:23334
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

"$PA" pool -listen $POOL -difficulty 0.0005 -en2 4 -job-interval 10m >"$OUT/pool.out" 2>&1 & pids+=($!)
sleep 1
"$BIN" --log-format json proxy --listen $PROXY -o stratum+tcp://$POOL -u farm -p x --status-interval 0 >"$OUT/proxy.log" 2>&1 & PXPID=$!; pids+=($PXPID)
sleep 2
"$BIN" --log-format json mine --device cpu --threads 1 -o stratum+tcp://$PROXY -u honest -p x --status-interval 0 \
  --share-log "$OUT/honest.jsonl" >"$OUT/honest.log" 2>&1 & pids+=($!)
rss() { awk '/VmRSS/ {print $2}' /proc/$PXPID/status; }
( while kill -0 $PXPID 2>/dev/null; do echo "$(date +%s.%N) $(rss)"; sleep 0.5; done ) >"$OUT/rss" 2>/dev/null & pids+=($!)
sleep 15
T0=$(date +%s.%N)
if [ "$SCEN" != none ]; then
  "$PA" "$SCEN" -target $PROXY -duration 60s "$@" >"$OUT/attack.json" 2>"$OUT/attack.err" & APID=$!
else
  (sleep 60; echo '{}' >"$OUT/attack.json") & APID=$!
fi
sleep 10
TN=$(date +%s.%N)
"$BIN" --log-format json mine --device cpu --threads 1 -o stratum+tcp://$PROXY -u newcomer -p x --status-interval 0 \
  --share-log "$OUT/newcomer.jsonl" >"$OUT/newcomer.log" 2>&1 & pids+=($!)
wait $APID
T1=$(date +%s.%N)
sleep 15
T2=$(date +%s.%N)
cleanup
python3 - "$OUT" "$T0" "$T1" "$T2" "$TN" "$SCEN" <<'PY'
import json, sys, datetime
out, t0, t1, t2, tn, scen = sys.argv[1], *map(float, sys.argv[2:6]), sys.argv[6]
rss = [tuple(map(float, l.split())) for l in open(out + "/rss") if len(l.split()) == 2]
mb = lambda kb: round(kb / 1024, 1)
before = [r for t, r in rss if t < t0]
during = [r for t, r in rss if t0 <= t <= t1]
after = [r for t, r in rss if t <= t2]
def shares(path, lo, hi):
    rows = []
    for l in open(path):
        e = json.loads(l)
        ts = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
        if lo <= ts <= hi:
            rows.append(e)
    return rows
h = shares(out + "/honest.jsonl", t0, t1)
rtt = sorted(e["rtt_ns"] / 1e6 for e in h if e.get("rtt_ns"))
pct = lambda p: round(rtt[min(len(rtt) - 1, int(p * len(rtt)))], 1) if rtt else None
outcomes = {}
for e in h:
    outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
n = shares(out + "/newcomer.jsonl", tn, t2)
first = min((datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in n if e["outcome"] == "accepted"), default=None)
print(json.dumps({"scenario": scen, "rss_mb_before": mb(before[-1]) if before else None, "rss_mb_max_during": mb(max(during)) if during else None,
    "rss_mb_15s_after": mb(after[-1]) if after else None, "honest_shares": outcomes, "rtt_ms_p50": pct(0.5), "rtt_ms_p99": pct(0.99),
    "rtt_ms_max": round(rtt[-1], 1) if rtt else None, "replies_over_1s": sum(1 for r in rtt if r > 1000),
    "newcomer_first_accept_s": round(first - tn, 1) if first else None,
    "attack": json.load(open(out + "/attack.json")) if open(out + "/attack.json").read().strip() else None, "dir": out}))
PY
