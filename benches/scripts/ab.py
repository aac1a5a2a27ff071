#!/usr/bin/env python3
"""Side-by-side timing of several `stratus` binaries on one benchmark command.

    python3 benches/scripts/ab.py ROUNDS BIN_A BIN_B [BIN_C ...] -- bench sim --hosts 20000 --vms 40000 --json

Every round runs each binary once, in an order that rotates from round to
round, so that load from other processes on a shared machine falls on all of
them alike. The command must print one JSON object whose `wall_seconds` field
(or the field named by $KEY, e.g. KEY=seconds for `bench placement`) is the
figure of the run. Reported per binary: the median and minimum of that figure,
the median whole-process wall time and CPU time (user + sys), and the median
over rounds of the per-round ratio to the first binary (figure and CPU time).
"""
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main():
    sep = sys.argv.index("--")
    rounds, bins, args = int(sys.argv[1]), sys.argv[2:sep], sys.argv[sep + 1:]
    key = os.environ.get("KEY", "wall_seconds")
    fig = {b: [] for b in bins}
    proc = {b: [] for b in bins}
    cpu = {b: [] for b in bins}
    for r in range(rounds):
        for b in bins[r % len(bins):] + bins[: r % len(bins)]:
            c0, t0 = cpu_children(), time.perf_counter()
            out = subprocess.run([b] + args, capture_output=True, text=True, check=True).stdout
            proc[b].append(time.perf_counter() - t0)
            cpu[b].append(cpu_children() - c0)
            fig[b].append(json.loads(out.strip().splitlines()[-1])[key])
        print(f"round {r + 1}: " + "  ".join(f"{b}={fig[b][-1]:.3f}" for b in bins), flush=True)
    med, base = statistics.median, bins[0]
    for b in bins:
        ratio = med([y / x for x, y in zip(fig[base], fig[b])])
        ratio_cpu = med([y / x for x, y in zip(cpu[base], cpu[b])])
        print(
            f"{b}: {key} median {med(fig[b]):.3f} min {min(fig[b]):.3f} | process median {med(proc[b]):.3f} "
            f"| cpu median {med(cpu[b]):.3f} | ratio to {base}: {ratio:.3f} ({key}), {ratio_cpu:.3f} (cpu)"
        )


if __name__ == "__main__":
    main()
