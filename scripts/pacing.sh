#!/usr/bin/env bash
# Pacing against both gateway kinds of RESTB_API.md, on loopback:
#  - kong:  the mock gateway, fixed one-second windows per key (Kong 2 headers);
#  - nginx: nginx limit_req (leaky bucket, no burst, 429) in front of the mock.
# For each allotted rate, restb runs RATE x SECONDS requests at --rps RATE and
# the script prints the sustained rate (successful requests started per second,
# first start to last successful start) and the 429 share.
# Target (issue 4): sustained >= 99 % of --rps with <= 0.5 % 429s.
#
# Usage: scripts/pacing.sh [SECONDS] [RATES...]    (defaults: 20; 1 4 20 100 500)
# Environment: GATEWAYS="kong nginx", LATENCY=0.05 (the upstream's latency).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}; shift || true
rates=${*:-1 4 20 100 500}
gateways=${GATEWAYS:-kong nginx}
latency=${LATENCY:-0.05}

cargo build --release --quiet
restb=$PWD/target/release/restb
dir=$(mktemp -d)
cleanup() {
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
export RESTB_CLIENT_KEY=pacing-key

start_mock() { # args: mock flags; prints its URL
  "$restb" mock "$@" > "$dir/mock.url" 2>/dev/null &
  for _ in $(seq 100); do [ -s "$dir/mock.url" ] && break; sleep 0.05; done
  head -n1 "$dir/mock.url"
}

printf '%-6s %6s %9s %9s %11s %9s %6s %8s\n' gateway rps requests seconds sustained "% of rps" 429s "% 429"
for gateway in $gateways; do
  for rate in $rates; do
    requests=$((rate * seconds))
    seq "$requests" | sed 's|^|https://example.com/p/|; s|$|.jpg|' > "$dir/images.txt"
    if [ "$gateway" = kong ]; then
      base=$(start_mock --rps "$rate" --latency "$latency" --headers kong2)
    else
      upstream=$(start_mock --latency "$latency")
      base=$(scripts/lib/nginx_gateway.sh "$dir" "$rate" "$upstream")
    fi
    "$restb" run "$dir/images.txt" --base-url "$base" --rps "$rate" --models re_logo -q \
      -o "$dir/out.jsonl" 2> "$dir/stats.txt" || true
    python3 - "$dir/stats.txt" "$gateway" "$rate" "$requests" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
gateway, rate, requests = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
ok, span = re.search(r"^\[(\d+)\] requests processed in \[([\d.]+)\] seconds", text, re.M).groups()
rps = re.search(r"^sustained \[([\d.]+)\]", text, re.M).group(1)
limited = int(re.search(r"\[(\d+)\] rate-limited", text).group(1))
sent = int(ok) + limited
print(f"{gateway:<6} {rate:6g} {requests:9d} {float(span):9.1f} {float(rps):11.2f} {100*float(rps)/rate:8.1f}% {limited:6d} {100*limited/max(sent,1):7.2f}%")
PY
    [ -f "$dir/nginx.pid" ] && { kill "$(cat "$dir/nginx.pid")"; rm -f "$dir/nginx.pid"; sleep 0.3; }
    kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
    : > "$dir/mock.url"
  done
done
