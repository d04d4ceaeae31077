#!/usr/bin/env python3
"""Active expiry at scale: loads N keys with a 1-second TTL (pipelined), then
measures how long until DBSIZE is 0 and used_memory is back near its
baseline, while a probe client sends GET every millisecond and records its
worst latency. Runs against redis-server and larder-server in one go."""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from resp import encode  # noqa: E402
from server import start_larder, start_redis  # noqa: E402


def used_memory(c):
    for line in c.cmd("INFO", "memory").decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


def measure(srv, n):
    c = srv.conn()
    base = used_memory(c)
    payload = []
    for i in range(n):
        payload.append(encode("SET", f"exp:{i:08d}", "v" * 16, "PX", "1000"))
    t_load = time.time()
    for i in range(0, n, 20000):
        chunk = payload[i:i + 20000]
        c.send_raw(b"".join(chunk))
        for _ in chunk:
            c.read()
    t_loaded = time.time()
    peak_keys = c.cmd("DBSIZE")
    lat = []
    stop = threading.Event()

    def probe():
        p = srv.conn()
        while not stop.is_set():
            t0 = time.perf_counter()
            p.cmd("GET", "probe")
            lat.append(time.perf_counter() - t0)
            time.sleep(0.001)
        p.close()

    t = threading.Thread(target=probe)
    t.start()
    while c.cmd("DBSIZE") > 0 and time.time() - t_loaded < 60:
        time.sleep(0.01)
    t_empty = time.time()
    while used_memory(c) > base + 2 * 1024 * 1024 and time.time() - t_loaded < 60:
        time.sleep(0.05)
    t_mem = time.time()
    stop.set()
    t.join()
    c.close()
    lat.sort()
    return {
        "load_s": t_loaded - t_load, "keys_after_load": peak_keys,
        "empty_after_load_s": t_empty - t_loaded, "memory_back_s": t_mem - t_loaded,
        "probe_p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else 0,
        "probe_max_ms": lat[-1] * 1000 if lat else 0, "probes": len(lat),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for name, start in (("redis", start_redis), ("larder", lambda: start_larder(threads=args.threads))):
        srv = start()
        try:
            r = measure(srv, args.keys)
        finally:
            srv.stop()
        print(f"{name:>6}: loaded {args.keys} keys in {r['load_s']:.2f}s (DBSIZE {r['keys_after_load']} right after); "
              f"DBSIZE 0 after {r['empty_after_load_s']:.2f}s; used_memory at baseline after {r['memory_back_s']:.2f}s; "
              f"probe GET p99 {r['probe_p99_ms']:.2f} ms, max {r['probe_max_ms']:.2f} ms ({r['probes']} probes)")


if __name__ == "__main__":
    main()
