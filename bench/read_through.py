#!/usr/bin/env python3
"""Read-through costs, measured on one larder-server:

1. Hit throughput: redis-benchmark GETs on keys that a rule loaded (warmed
   first, so every GET hits) against GETs on plain keys with the same values,
   on the same server with the same rules in place. The ratio is what having
   read-through costs a hit.
2. Load latency: a read that misses (one client, one key at a time) against
   the same statement run directly on the database by this script; the
   difference is Larder's overhead per load (queueing to the source's worker,
   storing, re-running the command, the extra network hop is in both).

    python3 bench/read_through.py [--keys 10000] [--requests 1000000]
"""
import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
import benchlib  # noqa: E402
from server import start_larder  # noqa: E402

LOAD = "SELECT v FROM kv WHERE id = :id"


def redis_benchmark(port, key, requests, keys, pipeline):
    return benchlib.redis_benchmark(port, ["GET", key], requests, keys, pipeline, extra=())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=1000000)
    ap.add_argument("--misses", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="larder-rtb-")
    path = os.path.join(d, "kv.db")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE kv (id TEXT PRIMARY KEY, v TEXT)")
    # redis-benchmark's __rand_int__ is a 12-digit zero-padded number.
    db.executemany("INSERT INTO kv VALUES (?, ?)",
                   [(f"{i:012d}", "v" * 100) for i in range(args.keys + args.misses)])
    db.commit()
    sources = [("sqlite", f"sqlite:{path}")]
    conf = "\n".join(f"cache-source {name} {uri}" for name, uri in sources) + "\n"
    for name, _ in sources:
        conf += f'cache-rule {name}:<id> source {name} as string ttl 1h load "{LOAD}"\n'
    srv = start_larder(threads=args.threads, config_text=conf)
    try:
        c = srv.conn(timeout=120)
        # 1. hits: warm the rule's keys, set plain twins
        c.cmd("CACHE", "WARM", "sqlite:<id>", "SELECT id, v FROM kv")
        deadline = time.time() + 120
        while time.time() < deadline and c.cmd("DBSIZE") < args.keys + args.misses:
            time.sleep(0.1)
        for i in range(0, args.keys, 1000):
            c.pipeline([("SET", f"plain:{j:012d}", "v" * 100) for j in range(i, min(args.keys, i + 1000))])
        print(f"| pipeline | plain GET rps | read-through hit GET rps | ratio |")
        print("|---|---|---|---|")
        for p in (1, 16):
            plain = rule = 0.0
            for _ in range(3):  # alternate, keep the best of each
                plain = max(plain, redis_benchmark(srv.port, "plain:__rand_int__", args.requests, args.keys, p))
                rule = max(rule, redis_benchmark(srv.port, "sqlite:__rand_int__", args.requests, args.keys, p))
            print(f"| {p} | {plain:.0f} | {rule:.0f} | {rule / plain:.3f} |", flush=True)

        # 2. load latency: misses one at a time vs the raw statement
        print()
        print("| database | raw query p50 us | read-through miss p50 us | overhead p50 us | miss p99 us |")
        print("|---|---|---|---|---|")
        for name, uri in sources:
            ids = [f"{i:012d}" for i in range(args.keys, args.keys + args.misses)]
            raw_db = sqlite3.connect(path)
            run_raw = lambda i: raw_db.execute("SELECT v FROM kv WHERE id = ?", (i,)).fetchone()  # noqa: E731
            raw = []
            for i in ids[: len(ids) // 2]:
                t0 = time.perf_counter()
                run_raw(i)
                raw.append((time.perf_counter() - t0) * 1e6)
            miss = []
            for i in ids[len(ids) // 2:]:
                t0 = time.perf_counter()
                assert c.cmd("GET", f"{name}:{i}") == b"v" * 100
                miss.append((time.perf_counter() - t0) * 1e6)
            hit = []
            for i in ids[len(ids) // 2:]:
                t0 = time.perf_counter()
                c.cmd("GET", f"{name}:{i}")
                hit.append((time.perf_counter() - t0) * 1e6)
            rp, mp, hp = statistics.median(raw), statistics.median(miss), statistics.median(hit)
            miss.sort()
            print(f"| {name} | {rp:.0f} | {mp:.0f} | {mp - hp - rp:.0f} (miss - hit round trip - raw) | "
                  f"{miss[int(len(miss) * 0.99)]:.0f} |", flush=True)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
