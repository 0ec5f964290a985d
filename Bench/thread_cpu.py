#!/usr/bin/env python3
"""CPU time a running process spends per thread name over an interval, split into user and system time.

    python3 Bench/thread_cpu.py PID SECONDS

Reads /proc/PID/task/*/stat before and after; threads of the same name (NIO event loops, GCD workers) are summed.
docs/benchmarks.md uses it to split a server's CPU under `etcdctl check perf` between event loops, the committer
and RocksDB's background threads.
"""
import collections
import os
import sys
import time


def sample(pid):
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        threads[tid] = (name, int(fields[11]), int(fields[12]))  # utime, stime in clock ticks
    return threads


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    pid, seconds = int(sys.argv[1]), float(sys.argv[2])
    ticks = os.sysconf("SC_CLK_TCK")
    before = sample(pid)
    time.sleep(seconds)
    after = sample(pid)
    totals = collections.defaultdict(lambda: [0, 0])
    for tid, (name, user, system) in after.items():
        _, user0, system0 = before.get(tid, (name, 0, 0))
        totals[name][0] += user - user0
        totals[name][1] += system - system0
    user = sum(t[0] for t in totals.values()) / ticks
    system = sum(t[1] for t in totals.values()) / ticks
    print(f"pid {pid}: user {user:.1f} s, system {system:.1f} s over {seconds:.0f} s ({(user + system) / seconds:.2f} cores)")
    for name, (u, s) in sorted(totals.items(), key=lambda item: -sum(item[1])):
        if u + s:
            print(f"  {name:24s} user {u / ticks:6.1f} s  system {s / ticks:6.1f} s")


if __name__ == "__main__":
    main()
