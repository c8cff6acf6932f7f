#!/usr/bin/env bash
# P restb processes on one client key, sharing one allotment through Redis
# (--shared-limit), on loopback, against both gateway kinds of RESTB_API.md:
#  - window: the mock gateway, fixed one-second windows per key (Kong 2 headers);
#  - leaky:  nginx limit_req (leaky bucket, no burst, 429) in front of the mock;
#  - mock-leaky: the mock's own leaky bucket with nginx's replies (429, no
#    Retry-After, no headers), which stamps each arrival with the kernel's
#    receive time: how evenly the processes space their requests, without
#    nginx's event-loop clock (milliseconds, late when it shares the cores).
# nginx logs every request with its time ($msec) and status, so the gateway's
# own totals and per-second counts come from what it saw, not from the clients
# (for the window gateway nginx is a plain logging proxy in front of the mock).
#
# Figures per (gateway, rate, P): the gateway's accepted requests per second
# (first to last accepted), as a % of the allotment; the 429 share; each
# process's sustained rate as a % of its fair share (rate / P); the Redis round
# trip per reservation (p50 / p99 in microseconds, from the processes' stats).
# Targets (issue 11): >= 98 % of the allotment, <= 0.5 % 429s, each process
# within 15 % of its fair share.
# Then: one of 4 processes killed with SIGKILL mid-run (per-second counts around
# the kill); one of 4 under faketime -f '+2s'; Redis restarted mid-run (every
# job's outcome exactly once); 4 processes sharing 1000/s.
#
# Before and after the runs it prints the host's timing (scripts/lib/host_conditions.py:
# load average, and how late a 1 ms sleep wakes): figures taken at different
# overshoots do not compare, whatever the load average says.
#
# Usage: scripts/shared_limit.sh [SECONDS]   (default 15)
# Environment: PROCS="1 2 4 8", RATES="20 100", GATEWAYS="window leaky" (or mock-leaky),
#   EXTRAS="kill faketime restart fast" (any subset; empty for none; also restart-window:
#   2 processes at 10/s on the window gateway, Redis stopped at +3 s for 3 s; and hang:
#   the same with Redis frozen by SIGSTOP at +3 s for 4 s), LATENCY=0.05;
#   PROCS, RATES or GATEWAYS empty skips the main table; RUN_FLAGS="--threads 40"
#   adds flags to every restb run; RESTB_LOG=FILTERS logs each process at RUST_LOG=FILTERS
#   (into its stats file; e.g. restb::limiter::start=trace, one line per start); LOCAL="1 2" the comparison runs without a shared
#   limit (processes on their own limiters; empty skips them); RESTB_BIN=PATH runs another build of restb
#   (to compare two); KEEP=1 keeps the temporary directory (each
#   case's gateway log access.CASE.log: time, request time, status, image;
#   and each process's stats.CASE.N.txt; CASE is GATEWAY.RATE.P.LABEL).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
procs=${PROCS-1 2 4 8}
rates=${RATES-20 100}
gateways=${GATEWAYS-window leaky}
extras=${EXTRAS-kill faketime restart fast}
latency=${LATENCY:-0.05}
local_procs=${LOCAL-1 2}

command -v redis-server >/dev/null || (apt-get update -qq && apt-get install -y -qq redis-server)
command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq nginx-light)
cargo build --release --quiet
restb=${RESTB_BIN:-$PWD/target/release/restb}
dir=$(mktemp -d)
cleanup() {
  [ -f "$dir/nginx.pid" ] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
  [ -f "$dir/mock.pids" ] && kill $(cat "$dir/mock.pids") 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done
  echo "redis-server did not start" >&2; exit 1
}
stop_redis() { kill "$(cat "$dir/redis.pid")"; rm -f "$dir/redis.pid"; sleep 0.2; }
start_redis
export RESTB_SHARED_LIMIT=redis://127.0.0.1:$redis_port

start_mock() { # args: mock flags; prints its URL (runs in a subshell: its PID goes to a file)
  : > "$dir/mock.url"
  "$restb" mock "$@" > "$dir/mock.url" 2>/dev/null &
  echo $! >> "$dir/mock.pids"
  for _ in $(seq 100); do [ -s "$dir/mock.url" ] && break; sleep 0.05; done
  head -n1 "$dir/mock.url"
}

start_nginx() { # args: RATE (0: no limit) UPSTREAM; logs to $dir/access.log; prints its URL
  scripts/lib/nginx_gateway.sh "$dir" "$1" "$2"
}

start_gateway() { # args: GATEWAY RATE; prints the base URL
  if [ "$1" = window ]; then
    start_nginx 0 "$(start_mock --rps "$2" --latency "$latency" --headers kong2)"
  elif [ "$1" = mock-leaky ]; then
    start_mock --rps "$2" --limiter leaky --retry-after 0 --headers none --latency "$latency" \
      --log "$dir/mock.log"
  else
    start_nginx "$2" "$(start_mock --latency "$latency")"
  fi
}

stop_gateway() {
  [ -f "$dir/nginx.pid" ] && { kill "$(cat "$dir/nginx.pid")"; rm -f "$dir/nginx.pid"; sleep 0.3; }
  if [ -f "$dir/mock.pids" ]; then
    local pids pid
    pids=$(cat "$dir/mock.pids"); rm -f "$dir/mock.pids"
    kill $pids 2>/dev/null || true
    # Until it has exited, its request log may not be whole.
    for pid in $pids; do
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    done
  fi
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
}

images() { # args: PROCESS COUNT -> $dir/images.PROCESS.txt
  seq "$2" | sed "s|^|https://example.com/p$1/|; s|\$|.jpg|" > "$dir/images.$1.txt"
}

launch() { # args: PROCESS BASE RATE [WRAPPER...]: runs in the background
  local n=$1 base=$2 rate=$3; shift 3
  rm -f "$dir/out.$n.jsonl"  # each case starts its outcomes afresh (restb refuses a full file)
  # RESTB_LOG: the processes log at those filters instead of -q's warnings.
  local quiet=-q logging=()
  [ -n "${RESTB_LOG:-}" ] && quiet= logging=(env "RUST_LOG=$RESTB_LOG")
  "${logging[@]}" "$@" "$restb" run "$dir/images.$n.txt" --base-url "$base" --rps "$rate" \
    --models re_logo $quiet ${RUN_FLAGS:-} -o "$dir/out.$n.jsonl" 2> "$dir/stats.$n.txt" &
  echo $! > "$dir/pid.$n"
}

summarise() { # args: GATEWAY RATE P LABEL
  python3 - "$dir" "$@" <<'PY'
import re, sys, glob
d, gateway, rate, p, label = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
log = [(f[0], f[2]) for f in (l.split() for l in open(f"{d}/access.log")) if len(f) >= 3]
ok = sorted(float(t) for t, s in log if s == "200")
limited = sum(1 for _, s in log if s == "429")
rate_at_gw = (len(ok) - 1) / (ok[-1] - ok[0]) if len(ok) > 1 else 0.0
shares, p50, p99 = [], [], []
for n in range(p):
    text = open(f"{d}/stats.{n}.txt").read()
    m = re.search(r"^sustained \[([\d.]+)\]", text, re.M)
    if m: shares.append(100 * float(m.group(1)) / (rate / p))
    m = re.search(r"Redis round trip p50 \[(\d+)\] us, p99 \[(\d+)\] us", text)
    if m: p50.append(int(m.group(1))); p99.append(int(m.group(2)))
share = f"{min(shares):5.1f}-{max(shares):5.1f}%" if shares else "-"
rtt = f"{max(p50)}/{max(p99)}" if p50 else "-"
print(f"{label:<9} {gateway:<10} {rate:5g} {p:2d} {len(ok):7d} {rate_at_gw:9.2f} {100*rate_at_gw/rate:7.1f}% {limited:5d} {100*limited/max(len(ok)+limited,1):6.2f}% {share:>14} {rtt:>11}")
PY
}

header() {
  printf '%-9s %-10s %5s %2s %7s %9s %8s %5s %7s %14s %11s\n' case gateway rps P "200s" "rate@gw" "% allot" 429s "% 429" "share of fair" "rtt p50/p99"
}

run_case() { # args: GATEWAY RATE P LABEL [faketime]; LABEL local: no --shared-limit
  local gateway=$1 rate=$2 p=$3 label=$4 base per shared=$RESTB_SHARED_LIMIT
  per=$((rate * seconds / p))
  base=$(start_gateway "$gateway" "$rate")
  for n in $(seq 0 $((p - 1))); do images "$n" "$per"; rm -f "$dir/stats.$n.txt"; done
  export RESTB_CLIENT_KEY=shared-$gateway-$rate-$p-$label-$RANDOM
  [ "$label" = local ] && unset RESTB_SHARED_LIMIT
  for n in $(seq 0 $((p - 1))); do
    # Only the wall clock moves: a host whose clock is off still has a true
    # monotonic clock. (With the monotonic clock moved too, Rust's std waits
    # on futexes with absolute monotonic deadlines that libfaketime cannot
    # move, and every timed wait of the process lasts 2 s longer.)
    if [ "${5:-}" = faketime ] && [ "$n" = 0 ]; then
      launch "$n" "$base" "$rate" env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f '+2s'
    else launch "$n" "$base" "$rate"; fi
  done
  export RESTB_SHARED_LIMIT=$shared
  for n in $(seq 0 $((p - 1))); do wait "$(cat "$dir/pid.$n")" || true; done
  stop_gateway
  # The mock's log (ARRIVAL KEY STATUS PATH) as nginx's (END DURATION STATUS).
  [ "$gateway" = mock-leaky ] && awk '{print $1, 0, $3}' "$dir/mock.log" > "$dir/access.log"
  summarise "$gateway" "$rate" "$p" "$label"
  if [ -n "${KEEP:-}" ]; then
    local case=$gateway.$rate.$p.$label n
    cp "$dir/access.log" "$dir/access.$case.log"
    for n in $(seq 0 $((p - 1))); do cp "$dir/stats.$n.txt" "$dir/stats.$case.$n.txt"; done
  fi
}

conditions="python3 scripts/lib/host_conditions.py"
$conditions before
echo "== P processes with --shared-limit on one key ($seconds s of work at each rate)"
header
for gateway in $gateways; do
  for rate in $rates; do
    # For comparison, processes on their own limiters: one alone, two on the key.
    for p in $local_procs; do run_case "$gateway" "$rate" "$p" local; done
    for p in $procs; do run_case "$gateway" "$rate" "$p" shared; done
  done
done

per_second() { # args: FROM TO (epoch seconds): accepted per second from the log
  python3 - "$dir/access.log" "$1" "$2" <<'PY'
import sys, collections
log = [(f[0], f[2]) for f in (l.split() for l in open(sys.argv[1])) if len(f) >= 3]
a, b = int(float(sys.argv[2])), int(float(sys.argv[3]))
for status in ("200", "429"):
    counts = collections.Counter(int(float(t)) for t, s in log if s == status)
    print(f"  {status}s per second around the event:", " ".join(f"{counts[s]:3d}" for s in range(a, b + 1)))
PY
}

restart_run() { # args: GATEWAY RATE P STOP_AFTER DOWN_FOR [hang]: Redis stopped mid-run and
  # restarted (with hang: frozen by SIGSTOP and thawed by SIGCONT, a Redis that
  # takes connections and answers nothing, as a host frozen or packets dropped)
  local gateway=$1 rate=$2 p=$3 stop_after=$4 down_for=$5 mode=${6:-restart} n base stopped_at
  if [ "$mode" = hang ]; then
    echo "== $p processes at $rate/s ($gateway), Redis frozen (SIGSTOP) after $stop_after s for $down_for s"
  else
    echo "== $p processes at $rate/s ($gateway), Redis stopped after $stop_after s and restarted $down_for s later"
  fi
  base=$(start_gateway "$gateway" "$rate")
  export RESTB_CLIENT_KEY=shared-restart-$RANDOM
  rm -f "$dir"/stats.*.txt
  for n in $(seq 0 $((p - 1))); do images "$n" $((rate * 20 / p)); launch "$n" "$base" "$rate"; done
  sleep "$stop_after"; stopped_at=$(date +%s.%N)
  if [ "$mode" = hang ]; then
    kill -STOP "$(cat "$dir/redis.pid")"; sleep "$down_for"; kill -CONT "$(cat "$dir/redis.pid")"
  else
    stop_redis; sleep "$down_for"; start_redis
  fi
  for n in $(seq 0 $((p - 1))); do wait "$(cat "$dir/pid.$n")" || echo "  process $n exited $?"; done
  per_second "$(python3 -c "print($stopped_at - 2)")" "$(python3 -c "print($stopped_at + 8)")"
  python3 - "$dir" "$p" <<'PY'
import json, sys, collections
d, p = sys.argv[1], int(sys.argv[2])
for n in range(p):
    images = [json.loads(l)["image"] for l in open(f"{d}/out.{n}.jsonl")]
    dup = [i for i, c in collections.Counter(images).items() if c > 1]
    want = sum(1 for _ in open(f"{d}/images.{n}.txt"))
    print(f"  process {n}: {len(set(images))} of {want} images have an outcome, {len(dup)} duplicated")
PY
  grep -h "shared limit at" "$dir"/stats.*.txt | cut -c1-160 | sed 's/^/  log: /'
  grep -h "Redis round trip" "$dir"/stats.*.txt | sed 's/^/  /'
  stop_gateway
}

for extra in $extras; do
  case $extra in
  faketime)
    echo "== 4 processes, one under faketime -f '+2s' (its clock 2 s ahead)"
    header
    for gateway in $gateways; do run_case "$gateway" 20 4 faketime faketime; done
    ;;
  fast)
    echo "== 4 processes sharing 1000/s"
    header
    run_case window 1000 1 local
    run_case window 1000 4 fast
    ;;
  kill)
    echo "== 4 processes at 20/s (leaky), one killed with SIGKILL after 5 s"
    base=$(start_gateway leaky 20)
    export RESTB_CLIENT_KEY=shared-kill-$RANDOM
    for n in 0 1 2 3; do images "$n" $((20 * 20 / 4)); launch "$n" "$base" 20; done
    sleep 5; killed_at=$(date +%s.%N); kill -9 "$(cat "$dir/pid.0")"
    for n in 1 2 3; do wait "$(cat "$dir/pid.$n")" || true; done
    echo "  killed at second $(printf %.0f "$killed_at") (counts from 3 s before to 5 s after):"
    per_second "$(python3 -c "print($killed_at - 3)")" "$(python3 -c "print($killed_at + 5)")"
    stop_gateway
    ;;
  restart)
    restart_run leaky 20 4 5 3 ;;
  restart-window)
    restart_run window 10 2 3 3 ;;
  hang)
    restart_run window 10 2 3 4 hang ;;
  esac
done
$conditions after
