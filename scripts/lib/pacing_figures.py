#!/usr/bin/env python3
"""Pacing figures as the gateway sees them, beside the client's own (issue 14).

The gateway's figures come from its own log, one line per request:
  mock  (restb mock --log FILE):  ARRIVAL KEY_LABEL STATUS PATH
        ARRIVAL in Unix seconds with microseconds
  nginx (log_format '$msec $request_time $status'):  END REQUEST_TIME STATUS
        arrival = END - REQUEST_TIME (millisecond resolution)

Definitions, used for every gateway and every run:
  accepted   requests answered 200
  sustained  the README's one definition (restb's stats line and `restb bench`
             compute the same from the client's clock, over successful starts):
             accepted requests per whole wall-clock second strictly between the
             first and the last second with an accepted arrival, from the
             gateway's clock; 0 when there is no whole second between them.
             Columns "client sust" and "gw sust" are this figure.
  span       (accepted - 1) / (last accepted arrival - first accepted arrival):
             accepted requests per second over the span from the first to the
             last accepted request (N requests bound N - 1 gaps, so an exact rate
             R gives R whatever the run length); "% of rps" is this figure against
             the allotment. It counts a window-aligned burst's span short (bursts
             of R at each second start span N/R - 1 seconds, so it reads above R
             on short runs); `sustained` does not.
  429 %      answers 429 (or nginx's rejection 503) / all requests in the log

Usage:
  pacing_figures.py gateway LOG mock|nginx [RATE]      figures of one log, as JSON
  pacing_figures.py header                             the table header
  pacing_figures.py row KIND RATE WALL LOG FORMAT STATS.json...
                                                       one table row (and, with
                                                       several STATS files, one
                                                       line per process)
  pacing_figures.py timeline LOG mock|nginx [STEP]     accepted and rejected
                                                       requests per STEP seconds
                                                       (default 0.5) from the
                                                       first arrival: where a
                                                       run's 429s came
  pacing_figures.py spacing LOG mock|nginx RATE [EVERY] how the accepted requests
                                                       were spaced against the
                                                       interval 1/RATE: the mean
                                                       gap, the gaps by whole
                                                       milliseconds, and how far
                                                       the accepted arrivals ran
                                                       behind an exact schedule
                                                       from the first, every EVERY
                                                       (default 50) of them
"""
import json
import sys


def arrivals(path, fmt):
    """(arrival seconds, status) of every request in the log, by arrival."""
    out = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                if fmt == "mock":
                    out.append((float(fields[0]), int(fields[2])))
                elif fmt == "nginx":
                    out.append((float(fields[0]) - float(fields[1]), int(fields[2])))
                else:
                    sys.exit(f"pacing_figures: unknown log format {fmt!r} (mock or nginx)")
            except (IndexError, ValueError):
                sys.exit(f"pacing_figures: {path}:{number}: not a {fmt} log line: {line!r}")
    out.sort()
    return out


def gateway_figures(path, fmt):
    """The gateway's figures of one log (see the module doc)."""
    seen = arrivals(path, fmt)
    accepted = [t for t, status in seen if status == 200]
    # nginx at its default rejects with 503 (kind nginx-503); nothing else here answers 503.
    limited = sum(1 for _, status in seen if status in (429, 503))
    span = accepted[-1] - accepted[0] if len(accepted) >= 2 else 0.0
    span_rate = (len(accepted) - 1) / span if span > 0 else 0.0
    # The whole seconds strictly between the first and the last with an
    # accepted arrival, as restb's stats (src/stats.rs) count starts.
    seconds = [int(t) for t in accepted]
    inside = [s for s in seconds if seconds[0] < s < seconds[-1]] if seconds else []
    whole = seconds[-1] - seconds[0] - 1 if seconds else 0
    sustained = len(inside) / whole if whole > 0 else 0.0
    return {
        "requests": len(seen),
        "accepted": len(accepted),
        "rate_limited": limited,
        "rate_limited_pct": 100.0 * limited / len(seen) if seen else 0.0,
        "span_s": span,
        "sustained_rps": sustained,
        "span_rps": span_rate,
    }


def client_figures(paths):
    """restb's --stats-json of each process."""
    stats = []
    for path in paths:
        try:
            with open(path) as f:
                stats.append(json.load(f))
        except (OSError, ValueError) as e:
            stats.append({"error": str(e)})
    return stats


HEADER = (
    f"{'gateway':<9} {'rps':>4} {'P':>2} {'requests':>8} {'wall s':>7} | "
    f"{'client sust':>11} {'429s':>5} | "
    f"{'gw sust':>8} {'span/s':>7} {'% of rps':>8} {'429s':>5} {'% 429':>6}"
)


def row(kind, rate, wall, log, fmt, stats_paths):
    gw = gateway_figures(log, fmt)
    clients = client_figures(stats_paths)
    rate = float(rate)
    ok = [c for c in clients if "error" not in c]
    client_429 = sum(c.get("rate_limited", 0) for c in ok)
    # restb's own sustained rate; several processes have one each (lines below).
    client_sust = f"{ok[0].get('sustained_rps', 0.0):11.2f}" if len(clients) == 1 and ok else f"{'-':>11}"
    lines = [
        f"{kind:<9} {rate:4g} {len(clients):2d} {gw['requests']:8d} {float(wall):7.1f} | "
        f"{client_sust} {client_429:5d} | "
        f"{gw['sustained_rps']:8.2f} {gw['span_rps']:7.2f} "
        f"{100 * gw['span_rps'] / rate:7.1f}% "
        f"{gw['rate_limited']:5d} {gw['rate_limited_pct']:5.2f}%"
    ]
    if len(clients) > 1:
        fair = rate / len(clients)
        total_ok = sum(c.get("succeeded", 0) for c in ok) or 1
        for i, c in enumerate(clients, 1):
            if "error" in c:
                lines.append(f"    process {i}: no stats ({c['error']})")
                continue
            # Each process has the same work: one that got more than its share
            # finishes sooner, so ok / span compares its rate with the fair share.
            succeeded, span = c.get("succeeded", 0), c.get("span_s", 0.0)
            own = succeeded / span if span > 0 else 0.0
            lines.append(
                f"    process {i}: {succeeded} ok in {span:.1f} s = {own:.2f}/s, "
                f"{100 * own / fair:.0f}% of a fair share ({fair:g}/s); "
                f"{100 * succeeded / total_ok:.0f}% of all successes; "
                f"{c.get('rate_limited', 0)} 429s; restb's sustained {c.get('sustained_rps', 0.0):.2f}"
            )
    return "\n".join(lines)


def timeline(path, fmt, step):
    """Accepted and rejected (429 or 503) arrivals per `step` seconds."""
    seen = arrivals(path, fmt)
    if not seen:
        return "no requests in the log"
    first = seen[0][0]
    slots = int((seen[-1][0] - first) / step) + 1
    accepted, rejected = [0] * slots, [0] * slots
    for t, status in seen:
        slot = int((t - first) / step)
        if status == 200:
            accepted[slot] += 1
        elif status in (429, 503):
            rejected[slot] += 1
    width = max(3, len(str(max(accepted + rejected))) + 1)
    cells = lambda counts: "".join(f"{n:>{width}d}" for n in counts)
    return (
        f"per {step:g} s from the first arrival ({len(seen)} requests)\n"
        f"accepted {cells(accepted)}\nrejected {cells(rejected)}"
    )


def spacing(path, fmt, rate, every):
    """Gaps between accepted arrivals, and their drift behind 1/`rate`."""
    accepted = [t for t, status in arrivals(path, fmt) if status == 200]
    if len(accepted) < 2:
        return "fewer than two accepted requests in the log"
    interval = 1.0 / rate
    gaps = [b - a for a, b in zip(accepted, accepted[1:])]
    by_ms = {}
    for gap in gaps:
        key = round(gap * 1000)
        by_ms[key] = by_ms.get(key, 0) + 1
    first = accepted[0]
    drift = [
        round((accepted[k] - first - k * interval) * 1000)
        for k in range(0, len(accepted), every)
    ]
    mean = sum(gaps) / len(gaps)
    if mean <= 0:
        return f"{len(accepted)} accepted, all in one instant of the log's clock"
    return (
        f"{len(accepted)} accepted; mean gap {mean * 1000:.3f} ms against "
        f"{interval * 1000:.3f} ms ({100 * (interval / mean):.1f} % of the rate)\n"
        "gaps by ms: "
        + " ".join(f"{ms}:{n}" for ms, n in sorted(by_ms.items()))
        + f"\nbehind an exact schedule every {every} accepted (ms): "
        + " ".join(str(d) for d in drift)
    )


def main(argv):
    if len(argv) >= 3 and argv[0] == "gateway":
        figures = gateway_figures(argv[1], argv[2])
        if len(argv) >= 4:
            figures["pct_of_rps"] = 100 * figures["span_rps"] / float(argv[3])
        print(json.dumps(figures))
    elif argv[:1] == ["header"]:
        print(HEADER)
    elif len(argv) in (3, 4) and argv[0] == "timeline":
        step = float(argv[3]) if len(argv) == 4 else 0.5
        if not step > 0:
            sys.exit("pacing_figures: timeline STEP must be above 0")
        print(timeline(argv[1], argv[2], step))
    elif len(argv) in (4, 5) and argv[0] == "spacing":
        rate = float(argv[3])
        every = int(argv[4]) if len(argv) == 5 else 50
        if not (rate > 0 and every > 0):
            sys.exit("pacing_figures: spacing RATE and EVERY must be above 0")
        print(spacing(argv[1], argv[2], rate, every))
    elif len(argv) >= 7 and argv[0] == "row":
        print(row(argv[1], argv[2], argv[3], argv[4], argv[5], argv[6:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
