#!/usr/bin/env bash
# --resume at scale: peak resident memory and time of `restb run --resume`
# over an outcome file of LINES lines (default 5,000,000; target <= 100 MB),
# against the mock gateway on loopback.
#  1. a small input (1,000 images: 990 done, 10 new): the cost of reading the
#     outcome file and holding the resume index (16 bytes per line);
#  2. the whole input (every done image again, and 10 new): the run as a
#     user resumes it, the input reader included.
#  3. one image repeated LINES / 5 times (a shared "no photo" placeholder), half
#     of them done: a dry run's look-up of the pending ones (it was quadratic in
#     the repeats: 7.3 s at 160,000, minutes at a million).
# Cases 1 and 2 check that exactly the 10 new images were sent, case 3 that half
# the repeats were found done.
# Usage: scripts/resume_scale.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-5000000}
cargo build --release --quiet
restb=$PWD/target/release/restb
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
export RESTB_CLIENT_KEY=scale-key

"$restb" mock --rps 100000 --latency 0 > "$dir/url" 2> "$dir/mock.log" &
mock=$!
for _ in $(seq 100); do [ -s "$dir/url" ] && break; sleep 0.05; done
base=$(head -n1 "$dir/url")

# One line per image, as restb writes them: one in ten failed, the others ok
# with a small answer.
echo "== writing $lines outcome lines"
awk -v n="$lines" 'BEGIN {
  for (i = 1; i <= n; i++) {
    image = "https://example.com/photos/listing-" i ".jpg"
    if (i % 10 == 0)
      printf "{\"id\":\"%d\",\"image\":\"%s\",\"models\":[\"re_logo\"],\"status\":\"failed\",\"http_status\":400,\"attempts\":1,\"rate_limited\":0,\"error\":\"invalid image\"}\n", i, image
    else
      printf "{\"id\":\"%d\",\"image\":\"%s\",\"models\":[\"re_logo\"],\"status\":\"ok\",\"http_status\":200,\"attempts\":1,\"rate_limited\":0,\"latency_ms\":812.4,\"solutions\":{\"re_logo\":{\"detections\":[{\"label\":\"remax\",\"confidence\":0.93}]}}}\n", i, image
  }
}' > "$dir/out.jsonl"
size=$(stat -c %s "$dir/out.jsonl")
echo "   $(numfmt --to=iec "$size") bytes"
new() { seq "$((lines + 1))" "$((lines + 10))" | sed 's|.*|https://example.com/photos/listing-&.jpg|'; }

resume_case() { # name input
  local name=$1 input=$2
  truncate -s "$size" "$dir/out.jsonl"
  echo "== $name: $(wc -l < "$input") input lines, --resume over $lines outcome lines"
  /usr/bin/time -v "$restb" run "$input" --base-url "$base" --rps 1000 --models re_logo \
    -o "$dir/out.jsonl" --resume > /dev/null 2> "$dir/time.log" || true
  grep -E 'resuming:|^\[[0-9]+\] requests' "$dir/time.log" | sed 's/^.*resuming:/   resuming:/; s/^\[/   [/'
  grep -E 'Maximum resident set size|Elapsed \(wall clock\)|User time|System time' "$dir/time.log" | sed 's/^\s*/   /'
  local added=$(( $(wc -l < "$dir/out.jsonl") - lines ))
  if [ "$added" -ne 10 ]; then echo "   FAIL: $added lines added, expected 10" >&2; exit 1; fi
  echo "   10 new images sent, 10 lines added"
}

{ seq 990 | sed 's|.*|https://example.com/photos/listing-&.jpg|'; new; } > "$dir/small.txt"
resume_case "small input" "$dir/small.txt"
{ seq "$lines" | sed 's|.*|https://example.com/photos/listing-&.jpg|'; new; } > "$dir/whole.txt"
resume_case "whole input" "$dir/whole.txt"

repeats=$((lines / 5))
placeholder=https://example.com/photos/no-photo.jpg
awk -v n="$repeats" -v image="$placeholder" 'BEGIN {
  for (i = 1; i <= n / 2; i++)
    printf "{\"id\":\"%d\",\"image\":\"%s\",\"models\":[\"re_logo\"],\"status\":\"ok\",\"http_status\":200,\"attempts\":1,\"rate_limited\":0,\"latency_ms\":812.4,\"solutions\":{\"re_logo\":{\"detections\":[]}}}\n", i, image
}' > "$dir/repeated.jsonl"
awk -v n="$repeats" -v image="$placeholder" 'BEGIN { for (i = 1; i <= n; i++) print image }' \
  > "$dir/repeated.txt"
echo "== one image $repeats times, half of them done: --resume --dry-run"
/usr/bin/time -v "$restb" run "$dir/repeated.txt" --models re_logo -o "$dir/repeated.jsonl" \
  --resume --dry-run > /dev/null 2> "$dir/time.log" || true
grep -E 'resuming:' "$dir/time.log" | sed 's/^.*resuming:/   resuming:/'
grep -E 'Maximum resident set size|Elapsed \(wall clock\)' "$dir/time.log" | sed 's/^\s*/   /'
if ! grep -q "resuming: $((repeats / 2)) of $repeats jobs already done" "$dir/time.log"; then
  echo "   FAIL: not $((repeats / 2)) of $repeats found done" >&2; exit 1
fi
