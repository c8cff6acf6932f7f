#!/usr/bin/env bash
# Threads and scale, against the mock gateway (Kong windows) on loopback:
#  1. --threads auto at 200/s with 2 s latency: sustained rate (target >= 198/s)
#     and how many threads the pool grew to (Little's law: about 400 in flight);
#  2. 1000/s at 1 s latency for SECONDS (default 60): sustained rate, the
#     client's peak resident memory (target < 200 MB), and whether the mock
#     kept up (no transient errors).
# Usage: scripts/scale.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cargo build --release --quiet
restb=$PWD/target/release/restb
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
export RESTB_CLIENT_KEY=scale-key
ulimit -n 65536 2>/dev/null || true

run_case() { # rate latency requests
  local rate=$1 latency=$2 requests=$3
  "$restb" mock --rps "$rate" --latency "$latency" --jitter 0.05 > "$dir/url" 2> "$dir/mock.log" &
  local mock=$!
  for _ in $(seq 100); do [ -s "$dir/url" ] && break; sleep 0.05; done
  seq "$requests" | sed 's|^|https://example.com/p/|; s|$|.jpg|' > "$dir/images.txt"
  echo "== $rate/s, latency ${latency}s, $requests requests, --threads auto"
  /usr/bin/time -f "client: peak RSS %M KB, CPU %U s user + %S s system, wall %e s" \
    "$restb" run "$dir/images.txt" --base-url "$(head -n1 "$dir/url")" --rps "$rate" \
      --models re_logo -q -o "$dir/out.jsonl" 2>&1 | grep -E '^\[|^sustained|client:'
  # SIGTERM: a background job of a script inherits SIGINT ignored, and restb keeps that.
  kill -TERM "$mock"; wait "$mock" 2>/dev/null || true
  grep -E 'served' "$dir/mock.log" || true
  : > "$dir/url"
}

run_case 200 2 $((200 * 30))
run_case 1000 1 $((1000 * seconds))
