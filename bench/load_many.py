#!/usr/bin/env python3
"""Batched loads (load-many, docs/caching.md) against one load per key, on
PostgreSQL (a throw-away cluster) and SQLite, in one run:

  * MGET of 100 missing keys of one rule: statements the database ran
    (PostgreSQL: its own count, pg_stat_statements; SQLite: Larder's INFO
    count) and the MGET's latency, over --rounds rounds with
    fresh keys each time;
  * 500 clients, each missing a different key at once: statements and the
    p50/p99 of the clients' latencies.

    LARDER_BIN=build/larder-server python3 bench/load_many.py [--rounds 20] [--clients 500]
"""
import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
import postgres  # noqa: E402
from server import start_larder  # noqa: E402

ROWS = 200_000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def source_queries(c):
    for line in c.cmd("INFO", "cache").decode().splitlines():
        if line.startswith("source_demo:"):
            return int(dict(kv.split("=", 1) for kv in line.split(":", 1)[1].split(","))["queries"])
    raise RuntimeError("no source_demo in INFO cache")


class Backend:
    def __init__(self, kind):
        self.kind = kind
        if kind == "postgres":
            # pg_stat_statements counts each statement as it runs (the
            # cumulative statistics views lag by up to a second).
            self.pg = postgres.Postgres(extra_options="-c shared_preload_libraries=pg_stat_statements")
            self.pg.sql(f"CREATE EXTENSION pg_stat_statements; CREATE TABLE kv (id int PRIMARY KEY, v text); "
                        f"INSERT INTO kv SELECT i, 'value ' || i FROM generate_series(1, {ROWS}) i; ANALYZE kv;")
            self.uri = self.pg.uri
            self.many = "SELECT id, v FROM kv WHERE id = ANY(:ids)"
        else:
            self.dir = tempfile.mkdtemp(prefix="larder-lm-")
            path = os.path.join(self.dir, "kv.db")
            db = sqlite3.connect(path)
            db.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)")
            db.executemany("INSERT INTO kv VALUES (?, ?)", ((i, f"value {i}") for i in range(1, ROWS + 1)))
            db.commit()
            db.close()
            self.uri = f"sqlite:{path}"
            self.many = "SELECT id, v FROM kv WHERE id IN (:ids)"

    def statements(self, c):
        """The database's own count where it has one (PostgreSQL), else Larder's."""
        if self.kind == "postgres":
            return int(self.pg.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                                   "WHERE query LIKE 'SELECT %FROM kv WHERE id%'"))
        return source_queries(c)

    def stop(self):
        if self.kind == "postgres":
            self.pg.stop()


def config(b):
    return f"""
cache-source demo {b.uri}
cache-rule one:<id> source demo as string ttl 1h max-loads 64 load "SELECT v FROM kv WHERE id = :id"
cache-rule many:<id> source demo as string ttl 1h max-loads 64 load "SELECT v FROM kv WHERE id = :id" load-many "{b.many}"
"""


def mget_rounds(srv, b, prefix, rounds, start):
    c = srv.conn()
    lat, stmts = [], []
    for r in range(rounds):
        ids = range(start + r * 100, start + r * 100 + 100)
        s0 = b.statements(c)
        t0 = time.perf_counter()
        got = c.cmd("MGET", *[f"{prefix}:{i}" for i in ids])
        lat.append((time.perf_counter() - t0) * 1000)
        stmts.append(b.statements(c) - s0)
        assert got == [f"value {i}".encode() for i in ids], got[:3]
    c.close()
    return lat, stmts


def stampede(srv, b, prefix, clients, start):
    conns = [srv.conn(timeout=60) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    lat = [0.0] * clients
    bad = []

    def one(i):
        barrier.wait()
        t0 = time.perf_counter()
        r = conns[i].cmd("GET", f"{prefix}:{start + i}")
        lat[i] = (time.perf_counter() - t0) * 1000
        if r != f"value {start + i}".encode():
            bad.append(r)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    c = srv.conn()
    s0 = b.statements(c)
    barrier.wait()
    for t in threads:
        t.join(120)
    stmts = b.statements(c) - s0
    for cc in conns:
        cc.close()
    assert not bad, bad[:3]
    return lat, stmts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backends", default="postgres,sqlite")
    args = ap.parse_args()
    rows = []
    for kind in args.backends.split(","):
        if kind == "postgres" and not postgres.available():
            print("PostgreSQL not installed: skipped")
            continue
        b = Backend(kind)
        srv = start_larder(threads=args.threads, config_text=config(b))
        try:
            for prefix in ("one", "many"):
                lat, stmts = mget_rounds(srv, b, prefix, args.rounds, 1)
                rows.append((kind, f"MGET 100 missing, {prefix}", sum(stmts) / len(stmts), pct(lat, 0.5),
                             pct(lat, 0.99)))
            for prefix in ("one", "many"):
                lat, stmts = stampede(srv, b, prefix, args.clients, 50_000)
                rows.append((kind, f"{args.clients} clients x 1 miss, {prefix}", stmts, pct(lat, 0.5),
                             pct(lat, 0.99)))
        finally:
            srv.stop()
            b.stop()
    print(f"{'database':9} {'case':34} {'statements':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, case, stmts, p50, p99 in rows:
        print(f"{kind:9} {case:34} {stmts:>10.1f} {p50:>8.2f} {p99:>8.2f}")


if __name__ == "__main__":
    main()
