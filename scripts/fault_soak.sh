#!/usr/bin/env bash
# Fault soak: thousands of jobs through the mock gateway with a heavy fault
# mix, interrupted again and again (SIGINT, SIGTERM and now and then kill -9)
# and resumed, then checked: every job has exactly one outcome line, every
# line is whole JSON, and failures are only the permanent fault or retries
# that ran out (a line with --max-attempts tries, or more 429s than a job
# may take). Not part of `cargo test` (it takes a few minutes).
#
# Usage: scripts/fault_soak.sh [JOBS] [SEED]     (defaults: 3000, 1)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-3000}
seed=${2:-1}
max_attempts=8
# RetryPolicy's default max_rate_limited: the 429s a job may take.
max_rate_limited=30
faults="500=0.04,503=0.04,502=0.03,reset=0.03,truncated=0.03,notjson=0.03,hang=0.005,error200=0.02,005=0.03,noheaders=0.05"

cargo build --release --quiet
restb=target/release/restb
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
RANDOM=$seed

seq "$jobs" | sed 's|^|https://example.com/photos/|; s|$|.jpg|' > "$dir/images.txt"
"$restb" mock --rps 400 --latency 0.02 --jitter 0.02 --hang 3 --seed "$seed" --faults "$faults" \
  > "$dir/url" 2> "$dir/mock.log" &
for _ in $(seq 50); do [ -s "$dir/url" ] && break; sleep 0.1; done
base=$(head -n1 "$dir/url")
export RESTB_CLIENT_KEY=soak-key

echo "soak: $jobs jobs, faults $faults, seed $seed"
cycles=0; signals=0; kills=0; status=130
while [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; do
  cycles=$((cycles + 1))
  if [ "$cycles" -gt 60 ]; then echo "FAIL: not done after 60 cycles"; exit 1; fi
  # A background job of a script inherits SIGINT ignored, and restb keeps an
  # inherited ignore (as under nohup): give it back the default so that the
  # SIGINTs below reach the run.
  env --default-signal=INT "$restb" run "$dir/images.txt" --base-url "$base" --rps 300 --timeout 1 --max-attempts "$max_attempts" \
    --models re_logo -q -o "$dir/out.jsonl" --resume 2> "$dir/run.log" &
  run=$!
  # Let it run 1 to 4 seconds, then interrupt it (unless it finished first).
  sleep "$((RANDOM % 4 + 1)).$((RANDOM % 10))"
  if kill -0 "$run" 2>/dev/null; then
    case $((RANDOM % 5)) in
      0) kill -9 "$run"; kills=$((kills + 1)) ;;
      1) kill -TERM "$run"; signals=$((signals + 1)) ;;
      *) kill -INT "$run"; signals=$((signals + 1)) ;;
    esac
  fi
  set +e; wait "$run" 2>/dev/null; status=$?; set -e
  case $status in
    0|1|130|137) ;;
    *) echo "FAIL: exit status $status"; cat "$dir/run.log"; exit 1 ;;
  esac
  echo "cycle $cycles: exit $status, $(wc -l < "$dir/out.jsonl") lines"
done
grep -E '^\[' "$dir/run.log" || true

python3 - "$dir/out.jsonl" "$jobs" "$max_attempts" "$max_rate_limited" <<'PY'
import collections, json, sys
path, jobs = sys.argv[1], int(sys.argv[2])
max_attempts, max_rate_limited = int(sys.argv[3]), int(sys.argv[4])
PERMANENT = "image could not be processed"
seen = collections.Counter()
status = collections.Counter()
errors = collections.Counter()
with open(path, "rb") as f:
    for number, raw in enumerate(f, 1):
        assert raw.endswith(b"\n"), f"line {number} is torn"
        line = json.loads(raw)
        seen[line["id"]] += 1
        status[line["status"]] += 1
        if line["status"] != "ok":
            error = line["error"]
            if error == PERMANENT:
                kind = "permanent fault"
            elif line["attempts"] >= max_attempts:
                kind = "retries ran out"
            elif line["rate_limited"] > max_rate_limited:
                kind = "429s ran out"
            else:
                kind = "UNEXPECTED"
            errors[(kind, error[:60])] += 1
twice = [i for i, n in seen.items() if n > 1]
missing = set(str(i) for i in range(1, jobs + 1)) - set(seen)
print(f"outcome lines: {sum(seen.values())}, distinct jobs: {len(seen)} of {jobs}")
print(f"status: {dict(status)}")
for (kind, error), n in errors.most_common():
    print(f"  failed {n} ({kind}): {error}")
assert not twice, f"jobs written twice: {twice[:10]}"
assert not missing, f"jobs missing: {sorted(missing)[:10]}"
unexpected = [e for (kind, e) in errors if kind == "UNEXPECTED"]
assert not unexpected, f"failures that are neither the permanent fault nor retries that ran out: {unexpected}"
print("exactly once: OK")
PY
echo "cycles: $cycles, SIGINT/SIGTERM: $signals, kill -9: $kills"
