#!/usr/bin/env python3
"""Replays a key-value request trace against a RESP server and prints the
miss ratio: each request reads the key; on a miss the key is stored with a
value of --value-size bytes. The read is TOUCH (it refreshes the key's
access data as GET does, and replies 1 or 0 rather than the value), so that
only the misses carry values over the wire.

One replay against any server:

    python3 bench/trace_replay.py --port 6379 --trace web12

The comparison table (docs/benchmarks.md): starts redis-server and
larder-server, and for each trace and cache size sets the same memory budget
on both (maxmemory = the server's own memory with no keys + the budget; the
budget is the cache size in keys times what one key costs in Redis), then
replays under each policy:

    python3 bench/trace_replay.py --compare [--traces web12,orm-busy,scarab,oltp]
        [--sizes 0.01,0.1] [--limit N]

Traces are read from ../shared/traces (see bench/traces.py and its README).
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
from resp import Conn, encode  # noqa: E402
from traces import TRACES, load_trace  # noqa: E402

REDIS_POLICIES = ["allkeys-lru", "allkeys-lfu"]
LARDER_POLICIES = ["allkeys-lru", "allkeys-lfu", "allkeys-random", "allkeys-s3fifo"]


def info(c, section):
    text = c.cmd("INFO", section)
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def replay(c, trace, value_size, depth):
    """Returns (misses, requests). Requests go in batches of up to `depth`
    distinct keys: first a TOUCH for each (a read that refreshes the key's
    access data, as GET does, but replies 1 or 0 instead of the value), then
    a SET for each key that missed. Within a batch the reads come before the
    fills; batches are kept far smaller than the cache."""
    value = b"v" * value_size
    misses = 0
    i, n = 0, len(trace)
    while i < n:
        batch, seen = [], set()
        while i < n and len(batch) < depth and trace[i] not in seen:
            seen.add(trace[i])
            batch.append(trace[i])
            i += 1
        c.send_raw(b"".join(encode("TOUCH", b"k:%d" % k) for k in batch))
        missed = [k for k in batch if c.read() == 0]
        if missed:
            c.send_raw(b"".join(encode("SET", b"k:%d" % k, value) for k in missed))
            for _ in missed:
                r = c.read()
                if isinstance(r, Exception):
                    raise RuntimeError(f"server error during replay: {r}")
            misses += len(missed)
    return misses, n


def key_cost(server, value_size, n=20000):
    """Bytes one key of the replay's shape costs in this server."""
    c = server.conn(timeout=120)
    c.cmd("FLUSHALL")
    before = int(info(c, "memory")["used_memory"])
    value = b"v" * value_size
    for i in range(0, n, 500):
        c.pipeline([("SET", b"k:%d" % (10**9 + j), value) for j in range(i, min(n, i + 500))])
    after = int(info(c, "memory")["used_memory"])
    c.cmd("FLUSHALL")
    c.close()
    return (after - before) / n


def run_one(server, trace, policy, budget, value_size, depth):
    # A fresh connection each time, measured before it has buffered anything:
    # the budget then covers the keys and this client's small pipeline.
    c = server.conn(timeout=120)
    c.cmd("CONFIG", "SET", "maxmemory", "0")
    c.cmd("FLUSHALL")
    c.cmd("CONFIG", "SET", "maxmemory-policy", policy)
    time.sleep(1.0)  # earlier clients' buffers are released by the servers' crons
    base = int(info(c, "memory")["used_memory"])
    c.cmd("CONFIG", "SET", "maxmemory", str(base + budget))
    c.cmd("CONFIG", "RESETSTAT")
    t0 = time.time()
    misses, n = replay(c, trace, value_size, depth)
    dt = time.time() - t0
    keys = c.cmd("DBSIZE")
    mem = info(c, "memory")
    evicted = int(info(c, "stats")["evicted_keys"])
    c.cmd("CONFIG", "SET", "maxmemory", "0")
    c.close()
    return {"miss": misses / n, "keys": keys, "evicted": evicted, "secs": dt,
            "peak_over": int(mem["used_memory_peak"]) - (base + budget)}


def compare(args):
    from server import start_larder, start_redis
    traces = args.traces.split(",")
    sizes = [float(s) for s in args.sizes.split(",")]
    redis = start_redis()
    larder = start_larder([], threads=args.threads)
    try:
        cost = key_cost(redis, args.value_size)
        lcost = key_cost(larder, args.value_size)
        print(f"# value {args.value_size} B; one key costs {cost:.0f} B in Redis, {lcost:.0f} B in Larder; "
              f"budget = cache keys x {cost:.0f} B, the same for both servers", flush=True)
        cols = [f"redis {p}" for p in REDIS_POLICIES] + [f"larder {p}" for p in LARDER_POLICIES]
        print("| trace | size (keys) | " + " | ".join(cols) + " |")
        print("|---|---|" + "---:|" * len(cols), flush=True)
        for name in traces:
            trace = load_trace(name)
            if args.limit:
                trace = trace[:args.limit]
            uniq = len(set(trace))
            for s in sizes:
                keys = max(1, int(uniq * s))
                budget = int(keys * cost)
                # Pipelined data in flight (and the servers' buffers for it)
                # kept to ~0.5% of the budget, so that it hardly competes
                # with the keys for memory.
                depth = max(1, min(64, int(budget * 0.005 / args.value_size)))
                row = []
                for p in REDIS_POLICIES:
                    row.append(run_one(redis, trace, p, budget, args.value_size, depth))
                for p in LARDER_POLICIES:
                    row.append(run_one(larder, trace, p, budget, args.value_size, depth))
                cells = [f"{r['miss']:.4f}" for r in row]
                print(f"| {name} | {s:.0%} ({keys}) | " + " | ".join(cells) + " |", flush=True)
                if args.verbose:
                    for col, r in zip(cols, row):
                        print(f"#   {col}: keys held {r['keys']}, evicted {r['evicted']}, "
                              f"peak over maxmemory {r['peak_over']} B, {r['secs']:.1f}s", flush=True)
    finally:
        redis.stop()
        larder.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--trace", default="web12", choices=sorted(TRACES))
    ap.add_argument("--value-size", type=int, default=4096)
    ap.add_argument("--depth", type=int, default=64, help="requests pipelined at a time")
    ap.add_argument("--limit", type=int, default=0, help="replay only the first N requests")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--traces", default="web12,orm-busy,scarab,oltp")
    ap.add_argument("--sizes", default="0.01,0.1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.compare:
        compare(args)
        return
    trace = load_trace(args.trace)
    if args.limit:
        trace = trace[:args.limit]
    c = Conn(args.port, host=args.host, timeout=120)
    misses, n = replay(c, trace, args.value_size, args.depth)
    print(f"{args.trace}: {n} requests, {misses} misses, miss ratio {misses / n:.4f}")


if __name__ == "__main__":
    main()
