#!/usr/bin/env python3
"""Write-behind costs, measured on one larder-server (SQLite source):

1. SET throughput: redis-benchmark SETs on keys of a `write behind` rule
   against SETs on plain keys (no rule) on the same server, for each
   appendfsync policy, pipeline 1 and 16, best of 3 alternating runs. The ratio is what journaling and
   queueing cost a write. redis-server's plain SET is printed for context.
2. Database statements per 1,000 writes: rows (one statement each) and
   transactions the flusher ran for the writes above, from INFO cache.
3. Lag: the oldest unflushed change's age, sampled every 50 ms during the
   load (INFO cache lag_ms); the target is under 1 s.

    python3 bench/write_behind.py [--keys 10000] [--requests 500000]
"""
import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
import benchlib  # noqa: E402
from server import start_larder, start_redis, wait_until  # noqa: E402

STORE = "INSERT INTO kv (id, v) VALUES (:id, :value) ON CONFLICT (id) DO UPDATE SET v = excluded.v"


def redis_benchmark(port, key, requests, keys, pipeline):
    return benchlib.redis_benchmark(port, ["SET", key, "__rand_int__"], requests, keys, pipeline, extra=("-d", "100"))


def stats(c):
    text = c.cmd("INFO", "cache")
    text = text.decode() if isinstance(text, bytes) else text
    f = dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)
    return dict(kv.split("=", 1) for kv in f["rule0_write_behind"].split(","))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--requests", type=int, default=500000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--delay", default="200ms")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--drain-timeout", type=float, default=120, help="seconds to wait for the queue to empty")
    args = ap.parse_args()

    d = tempfile.mkdtemp(prefix="larder-wbb-")
    path = os.path.join(d, "kv.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE kv (id TEXT PRIMARY KEY, v TEXT)")
    db.commit()
    db.close()
    conf = (f"cache-source db sqlite:{path}\n"
            f'cache-rule wb:<id> source db as string ttl 1h write behind write-delay {args.delay} '
            f'write-batch {args.batch} load "SELECT v FROM kv WHERE id = :id" store "{STORE}"\n')
    redis = start_redis()
    srv = start_larder(threads=args.threads, config_text=conf)
    print(f"{args.requests} SETs of 100 B on {args.keys} keys, 50 clients, {args.threads} Larder threads, "
          f"write-delay {args.delay}, write-batch {args.batch}")
    print(f"{'appendfsync':<12} {'pipeline':>8} {'plain SET/s':>12} {'write-behind/s':>15} {'ratio':>6} "
          f"{'redis SET/s':>12}")
    try:
        c = srv.conn()
        lags = []
        for policy in ("everysec", "always", "no"):
            c.cmd("CONFIG", "SET", "appendfsync", policy)
            for pipeline in (1, 16):
                done = threading.Event()

                def sample():
                    sc = srv.conn()
                    while not done.is_set():
                        lags.append(int(stats(sc)["lag_ms"]))
                        time.sleep(0.05)

                t = threading.Thread(target=sample)
                t.start()
                # Best of `rounds` alternating runs: this box is noisy.
                plain, wb = 0.0, 0.0
                for _ in range(args.rounds):
                    plain = max(plain, redis_benchmark(srv.port, "plain:__rand_int__", args.requests, args.keys,
                                                       pipeline))
                    wb = max(wb, redis_benchmark(srv.port, "wb:__rand_int__", args.requests, args.keys, pipeline))
                done.set()
                t.join()
                ref = redis_benchmark(redis.port, "plain:__rand_int__", args.requests, args.keys, pipeline)
                print(f"{policy:<12} {pipeline:>8} {plain:>12.0f} {wb:>15.0f} {wb / plain:>6.2f} {ref:>12.0f}")
        wait_until(lambda: stats(c)["queue_depth"] == "0", timeout=args.drain_timeout)
        st = stats(c)
        writes, rows, batches = int(st["writes_queued"]), int(st["rows_written"]), int(st["flush_batches"])
        print(f"\nwrites {writes}, rows written {rows}, transactions {batches}: "
              f"{rows * 1000 / writes:.1f} statements and {batches * 1000 / writes:.2f} transactions "
              f"per 1,000 writes (coalescing ratio {st['coalescing_ratio']})")
        lags.sort()
        print(f"lag during the load: p50 {lags[len(lags) // 2]} ms, max {lags[-1]} ms (target < 1000 ms)")
        print(f"journal now {st['journal_bytes']} bytes; rows in the table "
              f"{sqlite3.connect(path).execute('SELECT count(*) FROM kv').fetchone()[0]}")
    finally:
        srv.stop()
        redis.stop()


if __name__ == "__main__":
    main()
