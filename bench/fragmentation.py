#!/usr/bin/env python3
"""Fragmentation under churn, and what active defragmentation gives back:
Larder with activedefrag yes, Larder with it off, and Debian's redis-server
(which cannot defragment: its jemalloc is not Redis's patched one) in one
run. Each server gets maxmemory with allkeys-lru and is filled with 150-byte
values; then for --churn seconds random keys are rewritten with 150, 300 or
600 bytes (eviction keeps memory at the limit, so freed blocks scatter over
the slabs); then the server is left alone for --settle seconds (the
defragmenter's time). A redis-benchmark GET probe (1 client, no pipeline)
runs through the settle phase and gives its p50/p99.

Reported per server: allocator_frag_ratio (allocator_active /
allocator_allocated: slab space held but unused) and mem_fragmentation_ratio
(RSS / used_memory) after churn and after settling, RSS after settling, the
probe's latency, Larder's active_defrag_hits and its longest
defragmentation slice (LATENCY LATEST active-defrag-cycle).

    python3 bench/fragmentation.py [--maxmemory 100mb] [--churn 20] [--settle 20]
"""
import argparse
import csv
import io
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from resp import encode  # noqa: E402
from server import start_larder, start_redis  # noqa: E402


def info(c):
    out = {}
    for section in ("memory", "stats"):
        for line in c.cmd("INFO", section).decode().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k] = v
    return out


def pipeline(c, payloads):
    c.send_raw(b"".join(payloads))
    for _ in payloads:
        c.read()


def probe_latency(port, keys, seconds):
    """p50/p99 (ms) of one client's GETs for `seconds` (redis-benchmark,
    sized to last about that long)."""
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-c", "1", "-P", "1", "-t", "get", "-r", str(keys),
                          "-n", str(int(seconds * 15000)), "--csv"], capture_output=True, text=True).stdout
    for r in csv.reader(io.StringIO(out)):
        if r and r[0] == "GET":
            return float(r[4]), float(r[6]), float(r[7])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--maxmemory", default="100mb")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--churn", type=float, default=20)
    ap.add_argument("--settle", type=float, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    servers = [("larder, activedefrag yes", lambda: start_larder(threads=args.threads), True),
               ("larder, activedefrag no", lambda: start_larder(threads=args.threads), False),
               ("redis-server (no defrag)", start_redis, False)]
    print(f"maxmemory {args.maxmemory}, {args.keys} keys of 150 B, churn {args.churn}s (150/300/600 B), "
          f"settle {args.settle}s with a GET probe")
    print(f"{'server':<26} | {'alloc frag':>10} {'-> settled':>10} | {'rss frag':>8} {'-> settled':>10} | "
          f"{'rss MB':>7} | {'probe p50/p99/max ms':>20} | {'defrag hits':>11} | {'slice max ms':>12}")
    for label, start, defrag in servers:
        srv = start()
        try:
            c = srv.conn()
            c.cmd("CONFIG", "SET", "maxmemory", args.maxmemory)
            c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
            for s in range(0, args.keys, 2000):
                pipeline(c, [encode("SETRANGE", f"k{i}", "150", "a") for i in range(s, min(args.keys, s + 2000))])
            rng = random.Random(7)
            end = time.time() + args.churn
            while time.time() < end:
                pipeline(c, [encode("SETRANGE", f"k{rng.randrange(args.keys)}", str(rng.choice((150, 300, 600))),
                                    "b") for _ in range(2000)])
            churned = info(c)
            if defrag:
                for k, v in (("active-defrag-ignore-bytes", "2mb"), ("active-defrag-threshold-lower", "5"),
                             ("latency-monitor-threshold", "1"), ("activedefrag", "yes")):
                    assert c.cmd("CONFIG", "SET", k, v) == "OK", k
            lat = probe_latency(srv.port, args.keys, args.settle)
            settled = info(c)
            slice_ms = "-"
            if defrag:  # the longest defragmentation slice (latency monitor, >= 1 ms)
                slice_ms = next((str(e[3]) for e in c.cmd("LATENCY", "LATEST") if e[0] == b"active-defrag-cycle"), "<1")
            c.close()
        finally:
            srv.stop()
        p = "/".join(f"{x:.3f}" for x in lat) if lat else "-"
        print(f"{label:<26} | {churned['allocator_frag_ratio']:>10} {settled['allocator_frag_ratio']:>10} | "
              f"{churned['mem_fragmentation_ratio']:>8} {settled['mem_fragmentation_ratio']:>10} | "
              f"{int(settled['used_memory_rss']) / 2**20:>7.1f} | {p:>20} | "
              f"{settled.get('active_defrag_hits', '-'):>11} | {slice_ms:>12}", flush=True)


if __name__ == "__main__":
    main()
