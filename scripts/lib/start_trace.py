#!/usr/bin/env python3
"""Where the starts of processes on one shared schedule fall behind (issue 11).

Reads the per-start trace lines of every process (restb run with
RUST_LOG=restb::limiter::start=trace; scripts/shared_limit.sh writes them to
its stats files with RESTB_LOG=restb::limiter::start=trace KEEP=1) and the
gateway's log, and prints, from the SKIP-th start on (default 100: past
start-up):
  - which bound held each start (its slot, the gap after the process's own
    previous start, the gap after the latest start another process told of)
    and how long after it the start came;
  - the mean spacing of the starts against the interval 1/RATE, split into
    the gap kept (the interval and the pacing margin), the time past the
    bound, and how much later than the previous start's actual time the
    bound was (a start told late, or mapped late through Redis's clock);
  - for each rejection in the gateway's log, the starts in the 25 ms before
    it (their spacing and how long after their bounds they came): whether
    the client spaced them short or the gateway saw them so.

Usage: start_trace.py RATE GATEWAY_LOG mock|nginx TRACE_FILE... [--skip N]
  mock  log: ARRIVAL KEY STATUS PATH (restb mock --log)
  nginx log: END REQUEST_TIME STATUS ... (arrival = END - REQUEST_TIME, in ms)
"""
import re
import signal
import statistics
import sys

from pacing_figures import arrivals

LINE = re.compile(
    r"start seq (\S+) wall_us (\d+) after_slot_us (\S+) after_own_us (\S+) "
    r"after_other_us (\S+) gap_us (\d+)"
)


def number(field):
    return None if field == "none" else int(field)


def starts_of(paths):
    starts = []
    for process, path in enumerate(paths):
        with open(path) as f:
            for line in f:
                m = LINE.search(line)
                if m:
                    seq, wall, slot, own, other, gap = m.groups()
                    starts.append(dict(process=process, seq=number(seq), wall=int(wall),
                                       slot=int(slot), own=number(own), other=number(other),
                                       gap=int(gap)))
    return sorted(starts, key=lambda s: s["wall"])


def holding_bound(start):
    """The bound that held a start: the latest one it came after."""
    bounds = {"slot": start["slot"], "own": start["own"], "other": start["other"]}
    after = {name: late for name, late in bounds.items() if late is not None and late >= 0}
    if not after:
        return "none", None
    name = min(after, key=after.get)
    return name, after[name]


def spread(values):
    values = sorted(values)
    if not values:
        return "none"
    pick = lambda q: values[min(len(values) - 1, int(len(values) * q))]
    return (f"p10 {pick(0.1)} p50 {pick(0.5)} p90 {pick(0.9)} p99 {pick(0.99)} "
            f"mean {statistics.mean(values):.0f}")


def main(argv):
    skip = 100
    if "--skip" in argv:
        at = argv.index("--skip")
        skip = int(argv[at + 1])
        del argv[at:at + 2]
    rate, log, fmt, traces = float(argv[1]), argv[2], argv[3], argv[4:]
    interval = 1e6 / rate
    starts = starts_of(traces)
    later = starts[skip:]
    if len(later) < 2:
        sys.exit(f"only {len(starts)} traced starts: was RUST_LOG=restb::limiter::start=trace set?")
    print(f"{len(starts)} starts traced from {len(traces)} processes; figures from start {skip} on")
    held = {}
    for start in later:
        name, late = holding_bound(start)
        held.setdefault(name, []).append(late or 0)
    for name, lates in sorted(held.items()):
        print(f"  held by {name:<5} {len(lates):6d} starts; came after it (us): {spread(lates)}")
    spacing = (later[-1]["wall"] - later[0]["wall"]) / (len(later) - 1)
    gap = statistics.mean(s["gap"] for s in later)
    past = []
    told_late = []
    for before, start in zip(later, later[1:]):
        name, late = holding_bound(start)
        past.append(late or 0)
        if name == "other" and before["process"] != start["process"]:
            # The bound is the previous start as told plus the gap.
            told_late.append(start["wall"] - before["wall"] - start["gap"] - start["other"])
    print(f"  spacing {spacing:.0f} us against an interval of {interval:.0f} "
          f"({100 * (spacing / interval - 1):+.2f} %): gap kept {gap:.0f} "
          f"(margin {100 * (gap / interval - 1):.2f} %), past the bound {statistics.mean(past):.0f}")
    print(f"  a previous start (another process's) as told, after its actual time (us): "
          f"{spread(told_late)}")
    requests = arrivals(log, fmt)
    rejected = [arrival * 1e6 for arrival, status in requests if status != 200]
    print(f"{len(requests)} requests in the gateway's log, {len(rejected)} rejected")
    for arrival in rejected:
        print(f"  rejection at {arrival / 1e6:.4f}: starts before it (ms before it, "
              f"process, us since the previous start, us after its bound)")
        near = [s for s in starts if arrival - 25_000 <= s["wall"] <= arrival + 3_000]
        previous = None
        for start in near:
            since = "-" if previous is None else f"{start['wall'] - previous:d}"
            _, late = holding_bound(start)
            print(f"    {(arrival - start['wall']) / 1000:7.3f} p{start['process']} {since:>6} {late}")
            previous = start["wall"]


if __name__ == "__main__":
    # Piped into `head`: stop quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main(sys.argv)
