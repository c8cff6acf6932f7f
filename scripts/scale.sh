#!/usr/bin/env bash
# Threads and scale, against the mock gateway (Kong windows) on loopback:
#  1. --threads auto at 200/s with 2 s latency: sustained rate (target >= 198/s)
#     and how many threads the pool grew to (Little's law: about 400 in flight);
#  1b. --threads auto at 1000/s with a 1 ms reply for 20 s: a handful of
#     threads (target: at most a few dozen), not one per start of a second;
#  2. 1000/s at 1 s latency for SECONDS (default 60): sustained rate, the
#     client's peak resident memory (target < 200 MB), and whether the mock
#     kept up (no transient errors);
#  3. the ten-million case (issue 12): a 10,000,000-line input generated
#     here, against the mock with no latency and no limit at --rps RATE
#     (default 5000): validation lines per second (restb's own log line
#     "validated N records ... in X s"), the first request's delay from the
#     start (the mock's request log against the launch time), and the
#     client's peak resident memory (/usr/bin/time -v). Sending ten million
#     requests takes over half an hour here, so the run is stopped with
#     SIGINT after CAP seconds (default 60): the peak covers the checking
#     pass and a minute of sending, not the end;
#  4. a complete 1,000,000-line run, to its end: its peak resident memory.
# Targets: peak RSS <= 100 MB, validation >= 1,000,000 lines/s, first
# request within 15 s.
# Usage: scripts/scale.sh [SECONDS] [CAP] [RATE]
#   SCALE_ONLY=big scripts/scale.sh       runs cases 3 and 4 only
#   SCALE_ONLY=threads scripts/scale.sh   runs cases 1 and 2 only
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
cap=${2:-60}
big_rate=${3:-5000}
cargo build --release --quiet
restb=$PWD/target/release/restb
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
export RESTB_CLIENT_KEY=scale-key
ulimit -n 65536 2>/dev/null || true

run_case() { # rate latency requests [jitter]
  local rate=$1 latency=$2 requests=$3 jitter=${4:-0.05}
  "$restb" mock --rps "$rate" --latency "$latency" --jitter "$jitter" > "$dir/url" 2> "$dir/mock.log" &
  local mock=$!
  for _ in $(seq 100); do [ -s "$dir/url" ] && break; sleep 0.05; done
  seq "$requests" | sed 's|^|https://example.com/p/|; s|$|.jpg|' > "$dir/images.txt"
  echo "== $rate/s, latency ${latency}s, $requests requests, --threads auto"
  rm -f "$dir/out.jsonl"
  /usr/bin/time -f "client: peak RSS %M KB, CPU %U s user + %S s system, wall %e s" \
    "$restb" run "$dir/images.txt" --base-url "$(head -n1 "$dir/url")" --rps "$rate" \
      --models re_logo -q -o "$dir/out.jsonl" 2>&1 | grep -E '^\[|^sustained|client:'
  # SIGTERM: a background job of a script inherits SIGINT ignored, and restb keeps that.
  kill -TERM "$mock"; wait "$mock" 2>/dev/null || true
  grep -E 'served' "$dir/mock.log" || true
  : > "$dir/url"
}

big_case() { # lines cap-seconds rate
  local lines=$1 limit=$2 rate=$3
  echo "== $lines-line input, mock without latency or limit, --rps $rate, stopped after ${limit}s"
  seq "$lines" | sed 's|^|https://example.com/p/|; s|$|.jpg|' > "$dir/big.txt"
  rm -f "$dir/requests.log" "$dir/big.jsonl"
  "$restb" mock --log "$dir/requests.log" > "$dir/url" 2> "$dir/mock.log" &
  local mock=$!
  for _ in $(seq 100); do [ -s "$dir/url" ] && break; sleep 0.05; done
  local start
  start=$(date +%s.%N)
  rm -f "$dir/big.jsonl"
  /usr/bin/time -v -o "$dir/time.txt" timeout -s INT "$limit" "$restb" run "$dir/big.txt" \
    --base-url "$(head -n1 "$dir/url")" --rps "$rate" --models re_logo -o "$dir/big.jsonl" \
    2> "$dir/run.err" || true
  # TERM, not INT: a script's background job inherits SIGINT ignored.
  kill -TERM "$mock"; wait "$mock" 2>/dev/null || true
  python3 - "$start" "$dir/run.err" "$dir/requests.log" "$dir/time.txt" "$dir/big.jsonl" <<'PY'
import re, sys
start, err, log, timing, out = sys.argv[1:6]
text = open(err).read()
m = re.search(r"validated (\d+) records \((\d+) jobs\) in ([\d.]+) s", text)
if m:
    n, secs = int(m.group(1)), float(m.group(3))
    print(f"validation: {n} lines in {secs:.2f} s = {n / secs:,.0f} lines/s (target >= 1,000,000)")
first = open(log).readline().split()
if first:
    print(f"first request {float(first[0]) - float(start):.2f} s after the start (target <= 15 s)")
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(timing).read())
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", open(timing).read())
done = sum(1 for _ in open(out))
print(f"peak RSS {int(rss.group(1)) / 1024:.1f} MB (target <= 100 MB), wall {wall.group(1)}, {done} outcomes written")
for line in text.splitlines():
    if line.startswith("[") or line.startswith("sustained") or "interrupted" in line:
        print("  " + line)
PY
  : > "$dir/url"
}

if [ "${SCALE_ONLY:-}" != big ]; then
  run_case 200 2 $((200 * 30))
  run_case 1000 0.001 $((1000 * 20)) 0
  run_case 1000 1 $((1000 * seconds))
fi
if [ "${SCALE_ONLY:-}" != threads ]; then
  big_case 10000000 "$cap" "$big_rate"
  big_case 1000000 3600 "$big_rate"
fi
