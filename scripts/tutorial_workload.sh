#!/usr/bin/env bash
# The tutorial's workload (6 demo images x 6 models = 36 per-model requests,
# 4 requests per second allotted, a Kong-style fixed-window gateway) at two
# latencies, run by restb and by the tutorial's own client (rebuilt in
# scripts/tutorial_client.py), against the same mock gateway on loopback.
# Prints each client's stats lines. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
restb=target/release/restb
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT

for n in 1 2 3 4 5 6; do echo "https://demo.restb.ai/images/demo/demo-$n.jpg"; done > "$dir/images.txt"
export RESTB_CLIENT_KEY=demo-key

for latency in 1.16 0.3; do
  "$restb" mock --rps 4 --latency "$latency" --jitter 0.1 --headers kong-legacy > "$dir/url" 2>/dev/null &
  mock=$!
  for _ in $(seq 50); do [ -s "$dir/url" ] && break; sleep 0.1; done
  base=$(head -n1 "$dir/url")
  echo "== latency ${latency}s, gateway allows 4/s in fixed one-second windows"
  echo "-- restb run --per-model --rps 4"
  rm -f "$dir/out.jsonl"
  "$restb" run "$dir/images.txt" --per-model --rps 4 --base-url "$base" -q -o "$dir/out.jsonl" 2>&1 | grep -E '^\[' || true
  echo "   outcome lines: $(wc -l < "$dir/out.jsonl")"
  echo "-- tutorial client (4 threads)"
  python3 scripts/tutorial_client.py "$base" --rps 4
  kill "$mock"; wait "$mock" 2>/dev/null || true
  : > "$dir/url"
done
