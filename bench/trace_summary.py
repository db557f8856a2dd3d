"""Where the time of a `SINGLECELL_PROFILE=TRACE.json singlecell …` run went: the operators
(libtorch's `cpu_op` events) by self time, i.e. their own time less that of the operators they
called, and the CUDA kernels by time, each with its count, top N of each.

    python3 bench/trace_summary.py TRACE.json [--top 25]

Standard library only.
"""

import argparse
import collections
import json


def self_times(events):
    """Self time per name of nested complete events ("ph": "X") of one thread."""
    totals = collections.defaultdict(float)
    counts = collections.Counter()
    stack = []  # (end, name) of the open ancestors
    for e in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
        while stack and stack[-1][0] <= e["ts"]:
            stack.pop()
        if stack:
            totals[stack[-1][1]] -= e["dur"]
        totals[e["name"]] += e["dur"]
        counts[e["name"]] += 1
        stack.append((e["ts"] + e["dur"], e["name"]))
    return totals, counts


def table(title, totals, counts, top):
    whole = sum(totals.values()) or 1.0
    print(f"\n{title}: {whole / 1e3:,.1f} ms in all")
    print(f"{'ms':>10} {'share':>6} {'calls':>7}  name")
    for name, us in sorted(totals.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{us / 1e3:10.1f} {us / whole:6.1%} {counts[name]:7d}  {name[:110]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    events = [e for e in json.load(open(args.trace))["traceEvents"] if e.get("ph") == "X" and "dur" in e]
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "cpu_op":
            by_thread[e["tid"]].append(e)
    totals, counts = collections.defaultdict(float), collections.Counter()
    for thread_events in by_thread.values():
        t, c = self_times(thread_events)
        for name in t:
            totals[name] += t[name]
            counts[name] += c[name]
    table("operators, self time", totals, counts, args.top)
    kernels, kernel_counts = collections.defaultdict(float), collections.Counter()
    for e in events:
        if e.get("cat") == "kernel":
            kernels[e["name"]] += e["dur"]
            kernel_counts[e["name"]] += 1
    if kernels:
        table("CUDA kernels", kernels, kernel_counts, args.top)


if __name__ == "__main__":
    main()
