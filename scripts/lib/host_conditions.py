#!/usr/bin/env python3
"""One line on how steady this host's timing is right now, for the record of a
measurement: the load average, and how late a 1 ms sleep wakes up.

The load average alone does not say it: on this project's shared VM a run at
load 0.07 saw 1 ms sleeps overshoot by 2.3 ms at the 99th percentile (the
hypervisor's, not our processes'), and pacing on a no-burst leaky bucket at
100/s lost 5-8 points of the allotment to it. A gateway that rejects a request
a fraction of an interval early turns that lateness into 429s, so figures taken
at different overshoots do not compare.

Usage: host_conditions.py [LABEL]   (prints one line to standard output)
"""
import os
import sys
import time

SLEEPS = 1000
SLEEP_S = 0.001


def overshoots_us():
    late = []
    for _ in range(SLEEPS):
        began = time.perf_counter()
        time.sleep(SLEEP_S)
        late.append((time.perf_counter() - began - SLEEP_S) * 1e6)
    return sorted(late)


def main():
    label = sys.argv[1] if len(sys.argv) > 1 else "host"
    late = overshoots_us()
    at = lambda share: late[min(len(late) - 1, int(share * len(late)))]
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{label}: load average {load}; a 1 ms sleep overshoots "
        f"p50 {at(0.5):.0f} us, p99 {at(0.99):.0f} us, p99.9 {at(0.999):.0f} us "
        f"({SLEEPS} sleeps)",
        flush=True,
    )


if __name__ == "__main__":
    main()
