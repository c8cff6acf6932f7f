#!/usr/bin/env bash
# Client overhead: requests per CPU-second of the client, restb against wrk,
# side by side against the same mock gateway on loopback, with no rate limit
# and no latency. Target (issue 4): restb at least half as efficient as wrk.
# Installs wrk with apt-get when missing.
# Usage: scripts/overhead.sh [REQUESTS] [CONNECTIONS]   (defaults: 100000, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-100000}
connections=${2:-8}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
cargo build --release --quiet
restb=$PWD/target/release/restb
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
export RESTB_CLIENT_KEY=overhead-key

"$restb" mock > "$dir/url" 2>/dev/null &
for _ in $(seq 100); do [ -s "$dir/url" ] && break; sleep 0.05; done
base=$(head -n1 "$dir/url")
url="$base/vision/v2/predict?client_key=overhead-key&model_id=re_logo&image_url=https%3A%2F%2Fexample.com%2Fp%2F1.jpg"

# wrk: a fixed duration; its CPU time from /usr/bin/time.
/usr/bin/time -f "%U %S" -o "$dir/wrk.cpu" wrk -t1 -c"$connections" -d10s "$url" > "$dir/wrk.out"
wrk_requests=$(awk '/requests in/ {print $1}' "$dir/wrk.out")

# restb: the same number of connections, no pacing, outcomes to /dev/null.
seq "$requests" | sed 's|^|https://example.com/p/|; s|$|.jpg|' > "$dir/images.txt"
/usr/bin/time -f "%U %S %e" -o "$dir/restb.cpu" "$restb" run "$dir/images.txt" --base-url "$base" \
  --mode concurrency --threads "$connections" --models re_logo -q -o /dev/null 2> "$dir/restb.err"
restb_ok=$(sed -n 's/^\[\([0-9]*\)\] requests processed.*/\1/p' "$dir/restb.err")

python3 - "$dir/wrk.cpu" "$wrk_requests" "$dir/restb.cpu" "$restb_ok" "$connections" <<'PY'
import sys
wu, ws = map(float, open(sys.argv[1]).read().split()[:2])
wrk = int(sys.argv[2])
ru, rs, rwall = map(float, open(sys.argv[3]).read().split()[:3])
ours = int(sys.argv[4])
w_eff = wrk / (wu + ws)
r_eff = ours / (ru + rs)
print(f"{'client':<8} {'requests':>9} {'CPU s':>7} {'req per CPU-s':>14}")
print(f"{'wrk':<8} {wrk:9d} {wu+ws:7.2f} {w_eff:14.0f}")
print(f"{'restb':<8} {ours:9d} {ru+rs:7.2f} {r_eff:14.0f}   ({ours/rwall:.0f} req/s wall)")
print(f"restb / wrk efficiency: {r_eff / w_eff:.2f}  ({sys.argv[5]} connections each)")
PY
