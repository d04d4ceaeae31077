#!/usr/bin/env python3
"""Streams: redis-server vs larder-server in the same run, alternating rounds,
the best round of each reported, with the ratio larder / redis.

  XADD        redis-benchmark `XADD stream:__rand_int__ * f v` over 1,000
              streams, 50 clients, pipeline 1 and 16.
  XREADGROUP  one consumer-group client reading pipelined batches of
              `XREADGROUP GROUP g c COUNT 100 STREAMS s >` and acknowledging
              each batch with one XACK: entries read and acknowledged per
              second (a Python client: compare the ratio, not the figure).
  bytes/entry INFO memory used_memory after minus before loading 1,000,000
              small entries (`XADD big * f <8 bytes>`, IDs from the clock)
              into one stream, divided by the entries.

Not a pass/fail test.

  LARDER_BIN=build/larder-server /usr/bin/python3 bench/streams.py [--threads 2]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import encode_command, redis_benchmark  # noqa: E402
from server import start_redis, start_target  # noqa: E402


def used_memory(conn):
    for line in conn.cmd("INFO", "memory").decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise RuntimeError("no used_memory in INFO")


def load_entries(conn, key, n, batch=1000):
    """XADD `n` entries with clock IDs, pipelined; values of 8 bytes."""
    done = 0
    while done < n:
        k = min(batch, n - done)
        payload = b"".join(encode_command("XADD", key, "*", "f", f"{done + i:08d}") for i in range(k))
        conn.send_raw(payload)
        for _ in range(k):
            conn.read()
        done += k


def xreadgroup_round(conn, entries, batch=100, depth=8):
    """Reads and acknowledges `entries` entries of stream `rg` through group
    g: `depth` XREADGROUP calls in flight, then one XACK per batch read."""
    conn.cmd("DEL", "rg")
    conn.cmd("XGROUP", "CREATE", "rg", "g", "0", "MKSTREAM")
    load_entries(conn, "rg", entries)
    read = 0
    t0 = time.perf_counter()
    while read < entries:
        conn.send_raw(encode_command("XREADGROUP", "GROUP", "g", "c", "COUNT", str(batch), "STREAMS", "rg", ">")
                      * depth)
        acks = []
        for _ in range(depth):
            reply = conn.read()
            if not reply:
                continue
            ids = [e[0] for e in reply[0][1]]
            read += len(ids)
            acks.append(encode_command("XACK", "rg", "g", *ids))
        if not acks:
            break
        conn.send_raw(b"".join(acks))
        for _ in acks:
            conn.read()
    dt = time.perf_counter() - t0
    assert conn.cmd("XPENDING", "rg", "g")[0] == 0
    return read / dt


def bytes_per_entry(server, entries):
    conn = server.conn(timeout=120)
    conn.cmd("FLUSHALL")
    time.sleep(0.2)
    before = used_memory(conn)
    load_entries(conn, "big", entries)
    time.sleep(0.2)
    after = used_memory(conn)
    assert conn.cmd("XLEN", "big") == entries
    conn.cmd("FLUSHALL")
    conn.close()
    return (after - before) / entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--requests", type=int, default=200_000, help="XADD requests per round")
    ap.add_argument("--entries", type=int, default=200_000, help="XREADGROUP entries per round")
    ap.add_argument("--memory-entries", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    servers = {"redis": start_redis(), "larder": start_target(threads=args.threads)}
    best = {}
    try:
        for _ in range(args.rounds):
            for name, s in servers.items():
                for p in (1, 16):
                    rps = redis_benchmark(s.port, ["XADD", "stream:__rand_int__", "*", "f", "v"], args.requests,
                                          1000, p)
                    key = (f"XADD P{p}", name)
                    best[key] = max(best.get(key, 0), rps)
                c = s.conn(timeout=120)
                c.cmd("FLUSHALL")
                eps = xreadgroup_round(c, args.entries)
                c.cmd("FLUSHALL")
                c.close()
                best[("XREADGROUP+XACK", name)] = max(best.get(("XREADGROUP+XACK", name), 0), eps)
        mem = {name: bytes_per_entry(s, args.memory_entries) for name, s in servers.items()}
    finally:
        for s in servers.values():
            s.stop()

    print(f"{'test':<18}{'redis':>14}{'larder':>14}{'ratio':>8}")
    for test in ("XADD P1", "XADD P16", "XREADGROUP+XACK"):
        r, l = best[(test, "redis")], best[(test, "larder")]
        unit = "req/s" if test.startswith("XADD") else "entries/s"
        print(f"{test:<18}{r:>14,.0f}{l:>14,.0f}{l / r:>8.2f}  ({unit})")
    r, l = mem["redis"], mem["larder"]
    print(f"{'bytes/entry':<18}{r:>14.1f}{l:>14.1f}{l / r:>8.2f}  (used_memory delta / {args.memory_entries:,})")


if __name__ == "__main__":
    main()
