#!/usr/bin/env python3
"""Where a paced run's time goes, from the gateway's own request log.

Sorts the arrivals of `restb mock --log FILE` (ARRIVAL KEY STATUS PATH), takes the
gaps between consecutive accepted arrivals, and splits their excess over the
interval into small gaps (the pacing margin and jitter) and big ones (slots lost to
a 429 or a pause). Used to tune the limiter's margin (issue 10).

Usage: arrival_gaps.py LOG INTERVAL_MS
"""
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, interval = sys.argv[1], float(sys.argv[2])
    with open(path) as log:
        rows = sorted((float(f[0]), f[2]) for f in (line.split() for line in log) if len(f) >= 3)
    accepted = [t for t, status in rows if status == "200"]
    if len(accepted) < 2:
        sys.exit(f"{path}: fewer than two accepted requests")
    rejected = sum(1 for _, status in rows if status == "429")
    gaps = [(b - a) * 1000 for a, b in zip(accepted, accepted[1:])]
    small = sum(g - interval for g in gaps if g < 1.5 * interval)
    big = [g for g in gaps if g >= 1.5 * interval]
    span = accepted[-1] - accepted[0]
    ideal = (len(accepted) - 1) * interval / 1000
    print(f"accepted {len(accepted)}, 429 {rejected}; span {span:.2f} s against {ideal:.2f} s at the interval; "
          f"excess {small / 1000:.3f} s in small gaps, {sum(g - interval for g in big) / 1000:.3f} s in {len(big)} big ones")
    ordered = sorted(gaps)
    quantiles = [round(ordered[int(len(ordered) * q)] - interval, 3) for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)]
    print("gap minus interval (ms) at 1/5/25/50/75/95/99 %:", quantiles)


if __name__ == "__main__":
    main()
