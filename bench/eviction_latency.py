#!/usr/bin/env python3
"""Does eviction stall clients? Runs the same redis-benchmark SET load
(random keys from a large space, so every write adds a key) twice per
policy: on a server with no memory limit, and on one whose maxmemory is
full (every write evicts), and prints the p50/p99 latencies and the
p99 ratio. Redis runs the same load for comparison.

    python3 bench/eviction_latency.py [--requests 1000000] [--size 512]
        [--maxmemory 64mb] [--policies allkeys-lru,allkeys-s3fifo]
"""
import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
from server import start_larder, start_redis  # noqa: E402


def bench(port, requests, size, clients):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(requests), "-r", "100000000", "-d", str(size),
         "-c", str(clients)],
        check=True, capture_output=True, text=True).stdout
    # "latency summary (msec):" is followed by a header line and a values line.
    lines = out.replace("\r", "\n").splitlines()
    for i, line in enumerate(lines):
        if "latency summary" in line:
            vals = [float(v) for v in lines[i + 2].split()]
            rps = float(re.search(r"throughput summary: ([\d.]+)", out).group(1))
            return {"avg": vals[0], "p50": vals[2], "p95": vals[3], "p99": vals[4], "max": vals[5], "rps": rps}
    raise RuntimeError("could not parse redis-benchmark output:\n" + out)


def fill(port, maxmemory_bytes, size):
    """Loads keys until the server is at its limit (evictions have begun)."""
    n = int(maxmemory_bytes / size * 1.3)
    subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(n), "-r", "100000000",
                    "-d", str(size), "-c", "20", "-P", "16", "-q"], check=True, capture_output=True)


def run(name, start, args, policy):
    results = {}
    for limited in (False, True):
        extra = ["--maxmemory", args.maxmemory, "--maxmemory-policy", policy] if limited else []
        srv = start(extra)
        try:
            if limited:
                fill(srv.port, parse_memory(args.maxmemory), args.size)
            results[limited] = bench(srv.port, args.requests, args.size, args.clients)
        finally:
            srv.stop()
    a, b = results[False], results[True]
    print(f"| {name} | {policy} | {a['rps']:.0f} / {b['rps']:.0f} | {a['p50']:.3f} / {b['p50']:.3f} | "
          f"{a['p99']:.3f} / {b['p99']:.3f} | {b['p99'] / a['p99']:.2f}x |", flush=True)


def parse_memory(s):
    m = re.fullmatch(r"(\d+)(kb|mb|gb)?", s.lower())
    mult = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, None: 1}[m.group(2)]
    return int(m.group(1)) * mult


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--maxmemory", default="64mb")
    ap.add_argument("--policies", default="allkeys-lru,allkeys-s3fifo")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print("| server | policy | SET/s no limit / evicting | p50 ms | p99 ms | p99 ratio |")
    print("|---|---|---|---|---|---|")
    for policy in args.policies.split(","):
        run("larder", lambda extra: start_larder(extra, threads=args.threads), args, policy)
        if policy in ("allkeys-lru", "allkeys-lfu", "allkeys-random"):
            run("redis", lambda extra: start_redis(extra), args, policy)


if __name__ == "__main__":
    main()
