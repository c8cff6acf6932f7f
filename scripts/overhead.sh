#!/usr/bin/env bash
# Client overhead: requests per CPU-second of each client's own process,
# side by side in one run against the same real nginx on loopback serving a
# canned Restb.ai reply (scripts/lib/nginx_canned.sh): wrk, oha (an async
# Rust load generator) and restb, 8 connections each, no rate limit, no
# latency. Targets (issue 12): restb at least oha's figure.
# Installs wrk and nginx with apt-get when missing; oha needs
#   cargo install oha --locked
# (skipped with a note when it is not on PATH or in ~/.cargo/bin).
# Usage: scripts/overhead.sh [REQUESTS] [CONNECTIONS]   (defaults: 200000, 8)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-200000}
connections=${2:-8}
if ! command -v wrk >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk
fi
oha=$(command -v oha || ls "$HOME/.cargo/bin/oha" 2>/dev/null || true)
cargo build --release --quiet
restb=$PWD/target/release/restb
dir=$(mktemp -d)
trap 'kill $(cat "$dir/nginx.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$dir"' EXIT
export RESTB_CLIENT_KEY=overhead-key

base=$(scripts/lib/nginx_canned.sh "$dir")
url="$base/vision/v2/predict?client_key=overhead-key&model_id=re_logo&image_url=https%3A%2F%2Fexample.com%2Fp%2F1.jpg"
seq "$requests" | sed 's|^|https://example.com/p/|; s|$|.jpg|' > "$dir/images.txt"

# Each client's user + system CPU seconds, wall time and context switches
# (voluntary + involuntary) from /usr/bin/time.
/usr/bin/time -f "%U %S %e %w %c" -o "$dir/wrk.cpu" wrk -t1 -c"$connections" -d10s "$url" > "$dir/wrk.out"
echo "wrk $(awk '/requests in/ {print $1}' "$dir/wrk.out") $(cat "$dir/wrk.cpu")" > "$dir/rows"
if [ -n "$oha" ]; then
  /usr/bin/time -f "%U %S %e %w %c" -o "$dir/oha.cpu" "$oha" -n "$requests" -c "$connections" --no-tui \
    --output-format json "$url" > "$dir/oha.json"
  ok=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["statusCodeDistribution"].get("200",0))' "$dir/oha.json")
  echo "oha $ok $(cat "$dir/oha.cpu")" >> "$dir/rows"
else
  echo "(oha not installed: cargo install oha --locked)" >&2
fi
/usr/bin/time -f "%U %S %e %w %c" -o "$dir/restb.cpu" "$restb" run "$dir/images.txt" --base-url "$base" \
  --mode concurrency --threads "$connections" --models re_logo -q -o /dev/null 2> "$dir/restb.err"
ok=$(sed -n 's/^\[\([0-9]*\)\] requests processed.*/\1/p' "$dir/restb.err")
echo "restb $ok $(cat "$dir/restb.cpu")" >> "$dir/rows"

python3 - "$dir/rows" "$connections" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
eff = {}
print(f"{'client':<7} {'requests':>9} {'CPU s':>7} {'user s':>7} {'sys s':>6} {'wall s':>7} {'req per CPU-s':>14} {'req/s wall':>11} {'switches/req':>13}")
for name, n, user, system, wall, voluntary, involuntary in rows:
    n, cpu, wall = int(n), float(user) + float(system), float(wall)
    eff[name] = n / cpu
    switches = (int(voluntary) + int(involuntary)) / n
    print(f"{name:<7} {n:9d} {cpu:7.2f} {float(user):7.2f} {float(system):6.2f} {wall:7.2f} {eff[name]:14.0f} {n / wall:11.0f} {switches:13.2f}")
for other in ("wrk", "oha"):
    if other in eff:
        print(f"restb / {other}: {eff['restb'] / eff[other]:.2f}", end="   ")
print(f"({sys.argv[2]} connections each)")
PY
