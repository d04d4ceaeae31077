#!/usr/bin/env python3
"""Strings at the size limit, Larder vs Redis in one run: the peak resident
memory (VmHWM, reset before each case through /proc/PID/clear_refs) and the
time of commands that make or grow a value up to proto-max-bulk-len
(512 MB): SETRANGE at the last offset of an empty key, SETBIT at the last
bit, seven APPENDs of 64 MB, and SETRANGE growing a value in eight steps.
Redis's peak is the value itself; a server that builds the value twice
shows twice.

    LARDER_BIN=build/larder-server python3 bench/big_strings.py

Needs about 1.2 GB free per server. Not a pass/fail test.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from server import start_larder, start_redis  # noqa: E402

LIMIT = 512 * 1024 * 1024 - 1  # the last byte offset proto-max-bulk-len allows


def status_mb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    return -1


CASES = [
    ("SETRANGE at 512 MB - 1", [("SETRANGE", "k", str(LIMIT - 1), "x")]),
    ("SETBIT at the last bit", [("SETBIT", "k", str(LIMIT * 8 + 7), "1")]),
    ("APPEND 64 MB x 7", [("APPEND", "k", "x" * (64 << 20))] * 7),
    ("SETRANGE growing in 8 steps", [("SETRANGE", "k", str((i + 1) * (LIMIT // 8) - 1), "x") for i in range(8)]),
]


def measure(server):
    c = server.conn(timeout=600)
    pid = server.proc.pid
    rows = []
    for label, cmds in CASES:
        c.cmd("FLUSHALL", "SYNC")
        time.sleep(0.5)
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        before = status_mb(pid, "VmRSS")
        t = time.perf_counter()
        for cmd in cmds:
            c.cmd(*cmd)
        took = time.perf_counter() - t
        rows.append((label, before, status_mb(pid, "VmHWM"), status_mb(pid, "VmRSS"), took))
    c.close()
    return rows


def main():
    results = {}
    for name, start in (("redis", lambda: start_redis(["--save", ""])), ("larder", lambda: start_larder(threads=1))):
        s = start()
        try:
            results[name] = measure(s)
        finally:
            s.stop()
    print("| case | redis peak MB | larder peak MB | peak x | redis s | larder s |")
    print("|---|---|---|---|---|---|")
    for r, l in zip(results["redis"], results["larder"]):
        rp, lp = r[2] - r[1], l[2] - l[1]  # over the resident memory before
        print(f"| {r[0]} | {rp} | {lp} | {lp / max(rp, 1):.2f} | {r[4]:.2f} | {l[4]:.2f} |")


if __name__ == "__main__":
    main()
