#!/usr/bin/env python3
"""Bytes per key, Larder vs Redis, measured in the same run: loads N keys of
one shape into a fresh server and reports (used_memory after - before) / N and
the same for RSS. Shapes: small hashes (5 fields), small sets (5 members),
small sorted sets (5 members), and strings (16-byte names, 100-byte values,
with a TTL)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from resp import encode  # noqa: E402
from server import start_larder, start_redis  # noqa: E402

SHAPES = {
    "hash (5 fields)": lambda i: encode("HSET", f"user:{i:010d}", "name", f"n{i}", "age", str(i % 90),
                                        "city", "Lisbon", "plan", "pro", "score", str(i % 1000)),
    "set (5 members)": lambda i: encode("SADD", f"tags:{i:010d}", "red", "green", "blue", f"t{i % 7}", "x"),
    "zset (5 members)": lambda i: encode("ZADD", f"rank:{i:010d}", "1", "a", "2", "b", "3", "c", "4", "d",
                                         str(i % 100), "e"),
    "string 16B+100B+TTL": lambda i: encode("SET", f"key:{i:012d}", "v" * 100, "EX", "100000"),
}


def memory(c):
    out = {}
    for line in c.cmd("INFO", "memory").decode().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return int(out["used_memory"]), int(out["used_memory_rss"])


def load(srv, make, n):
    c = srv.conn()
    before = memory(c)
    batch = []
    for i in range(n):
        batch.append(make(i))
        if len(batch) == 5000:
            c.send_raw(b"".join(batch))
            for _ in batch:
                c.read()
            batch = []
    if batch:
        c.send_raw(b"".join(batch))
        for _ in batch:
            c.read()
    after = memory(c)
    c.close()
    return (after[0] - before[0]) / n, (after[1] - before[1]) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print(f"{args.keys} keys per shape; bytes per key from used_memory (and RSS) deltas")
    print(f"{'shape':<22} | {'redis used':>10} {'rss':>8} | {'larder used':>11} {'rss':>8} | {'used x':>6}")
    for name, make in SHAPES.items():
        res = {}
        for label, start in (("redis", start_redis), ("larder", lambda: start_larder(threads=args.threads))):
            srv = start()
            try:
                res[label] = load(srv, make, args.keys)
            finally:
                srv.stop()
        r, l = res["redis"], res["larder"]
        print(f"{name:<22} | {r[0]:>10.1f} {r[1]:>8.1f} | {l[0]:>11.1f} {l[1]:>8.1f} | {l[0] / r[0]:>6.2f}")


if __name__ == "__main__":
    main()
