#!/usr/bin/env python3
"""Big keys, Larder vs Redis in one run: one set, hash, sorted set and list
of N members each (default 1,000,000; --sizes 1000000,10000000), then for
each command Redis documents as O(1) or O(log N) on that type: its latency
(p50, p99 over --calls calls) and, meanwhile, the p99 of a probe client that
GETs another key every millisecond from its own process; then bytes per
element (used_memory and RSS deltas over the fill) and the time UNLINK and
DEL take on the whole key. Commands that change the key are paired with
their inverse so the size stays N.

    LARDER_BIN=build/larder-server python3 bench/big_keys.py [--sizes 1000000] [--types set,zset]

--list-compress-depth D sets list-compress-depth on both servers before the
fill (the list is then made with it).
"""
import argparse
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from resp import encode  # noqa: E402
from server import start_larder, start_redis  # noqa: E402


def info(c, section):
    out = {}
    for line in c.cmd("INFO", section).decode().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def memory(c):
    m = info(c, "memory")
    return int(m["used_memory"]), int(m["used_memory_rss"])


def member(i):
    return f"member:{i:09d}"


def fill(c, typ, n):
    """Fills key `typ` with n members, 1000 per command, pipelined."""
    batch = []

    def flush():
        c.send_raw(b"".join(batch))
        for _ in batch:
            c.read()
        batch.clear()

    for start in range(0, n, 1000):
        ids = range(start, min(n, start + 1000))
        if typ == "set":
            batch.append(encode("SADD", "set", *[member(i) for i in ids]))
        elif typ == "hash":
            batch.append(encode("HSET", "hash", *[x for i in ids for x in (member(i), f"value:{i}")]))
        elif typ == "zset":
            batch.append(encode("ZADD", "zset", *[x for i in ids for x in (str(i * 7 % 1000003), member(i))]))
        else:
            batch.append(encode("RPUSH", "list", *[member(i) for i in ids]))
        if len(batch) == 50:
            flush()
    if batch:
        flush()


def commands(typ, n):
    """(label, [command, ...]) per measured operation: the commands of one
    call, the first timed, the rest (its inverse) not."""
    mid = member(n // 2)
    if typ == "set":
        return [("SADD new", [["SADD", "set", "extra"], ["SREM", "set", "extra"]]),
                ("SISMEMBER", [["SISMEMBER", "set", mid]]),
                ("SRANDMEMBER", [["SRANDMEMBER", "set"]]),
                ("SRANDMEMBER 10", [["SRANDMEMBER", "set", "10"]]),
                ("SRANDMEMBER -10", [["SRANDMEMBER", "set", "-10"]]),
                ("SPOP", [["SPOP", "set"], None]),  # None: put back what it popped
                ("SPOP 10", [["SPOP", "set", "10"], None]),
                ("SSCAN COUNT 10", [["SSCAN", "set", "CURSOR", "COUNT", "10"]]),
                ("SREM", [["SREM", "set", mid], ["SADD", "set", mid]]),
                ("SCARD", [["SCARD", "set"]])]
    if typ == "hash":
        return [("HSET new", [["HSET", "hash", "extra", "v"], ["HDEL", "hash", "extra"]]),
                ("HGET", [["HGET", "hash", mid]]),
                ("HRANDFIELD", [["HRANDFIELD", "hash"]]),
                ("HRANDFIELD 10", [["HRANDFIELD", "hash", "10"]]),
                ("HRANDFIELD -10 WV", [["HRANDFIELD", "hash", "-10", "WITHVALUES"]]),
                ("HSCAN COUNT 10", [["HSCAN", "hash", "CURSOR", "COUNT", "10"]]),
                ("HDEL", [["HDEL", "hash", mid], ["HSET", "hash", mid, "v"]]),
                ("HLEN", [["HLEN", "hash"]])]
    if typ == "zset":
        return [("ZADD new", [["ZADD", "zset", "500000.5", "extra"], ["ZREM", "zset", "extra"]]),
                ("ZADD update", [["ZADD", "zset", "12.5", mid], ["ZADD", "zset", str((n // 2) * 7 % 1000003), mid]]),
                ("ZSCORE", [["ZSCORE", "zset", mid]]),
                ("ZRANK", [["ZRANK", "zset", mid]]),
                ("ZRANGE mid 10", [["ZRANGE", "zset", str(n // 2), str(n // 2 + 9)]]),
                ("ZREVRANGE mid 10", [["ZREVRANGE", "zset", str(n // 2), str(n // 2 + 9)]]),
                ("ZRANGEBYSCORE LIMIT 10", [["ZRANGEBYSCORE", "zset", "500000", "+inf", "LIMIT", "0", "10"]]),
                ("ZCOUNT", [["ZCOUNT", "zset", "1000", "900000"]]),
                ("ZRANDMEMBER", [["ZRANDMEMBER", "zset"]]),
                ("ZRANDMEMBER 10", [["ZRANDMEMBER", "zset", "10"]]),
                ("ZINCRBY", [["ZINCRBY", "zset", "1", mid], ["ZINCRBY", "zset", "-1", mid]]),
                ("ZREM", [["ZREM", "zset", mid], ["ZADD", "zset", str((n // 2) * 7 % 1000003), mid]]),
                ("ZPOPMIN", [["ZPOPMIN", "zset"], None]),
                ("ZSCAN COUNT 10", [["ZSCAN", "zset", "CURSOR", "COUNT", "10"]]),
                ("ZCARD", [["ZCARD", "zset"]])]
    return [("LPUSH", [["LPUSH", "list", "x"], ["LPOP", "list"]]),
            ("RPUSH", [["RPUSH", "list", "x"], ["RPOP", "list"]]),
            ("LPOP", [["LPOP", "list"], ["LPUSH", "list", member(0)]]),
            ("RPOP", [["RPOP", "list"], ["RPUSH", "list", member(n - 1)]]),
            ("LRANGE 0 9", [["LRANGE", "list", "0", "9"]]),
            ("LRANGE -10 -1", [["LRANGE", "list", "-10", "-1"]]),
            ("LINDEX 5", [["LINDEX", "list", "5"]]),
            ("LINDEX mid (O(N))", [["LINDEX", "list", str(n // 2)]]),
            ("LSET mid (O(N))", [["LSET", "list", str(n // 2), "y"]]),
            ("LLEN", [["LLEN", "list"]])]


def probe_main(port, stop, out):
    """Its own process: GET every millisecond, (t, latency) for each."""
    from resp import Conn  # noqa: E402
    c = Conn(port)
    c.cmd("SET", "probe", "v")
    samples = []
    while not stop.is_set():
        t0 = time.monotonic()
        c.cmd("GET", "probe")
        samples.append((t0, time.monotonic() - t0))
        time.sleep(0.001)
    out.put(samples)


def pct(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def measure(srv, typ, n, calls, depth=0):
    c = srv.conn(timeout=600)
    assert c.cmd("CONFIG", "SET", "list-compress-depth", str(depth)) == "OK"
    base = memory(c)
    t = time.time()
    fill(c, typ, n)
    fill_s = time.time() - t
    after = memory(c)
    enc = c.cmd("OBJECT", "ENCODING", typ).decode()
    stop = mp.Event()
    q = mp.Queue()
    p = mp.Process(target=probe_main, args=(srv.port, stop, q))
    p.start()
    time.sleep(0.5)
    rows = []
    for label, cmds in commands(typ, n):
        lat = []
        cursor = b"0"
        t_start = time.monotonic()
        for _ in range(calls):
            cmd = [cursor if a == "CURSOR" else a for a in cmds[0]]
            t0 = time.perf_counter()
            r = c.cmd(*cmd)
            lat.append(time.perf_counter() - t0)
            if "CURSOR" in cmds[0]:
                cursor = r[0]
            for undo in cmds[1:]:
                if undo is None:  # put the popped members back
                    popped = r if isinstance(r, list) else [r]
                    if typ == "zset":
                        c.cmd("ZADD", typ, *[x for i in range(0, len(popped), 2) for x in (popped[i + 1], popped[i])])
                    else:
                        c.cmd("SADD", typ, *popped)
                else:
                    c.cmd(*undo)
        rows.append((label, lat, t_start, time.monotonic()))
    # Freeing the whole key: UNLINK (Redis frees big values in the
    # background) on this one, DEL on a copy made as big.
    t0 = time.perf_counter()
    c.cmd("UNLINK", typ)
    unlink_ms = (time.perf_counter() - t0) * 1000
    t_del_start = time.monotonic()
    fill(c, typ, n)
    t_del_start = time.monotonic()
    t0 = time.perf_counter()
    c.cmd("DEL", typ)
    del_ms = (time.perf_counter() - t0) * 1000
    t_del_end = time.monotonic()
    time.sleep(0.3)
    stop.set()
    samples = q.get()
    p.join()
    c.close()
    out = []
    for label, lat, a, b in rows:
        during = [l for (t, l) in samples if a <= t <= b]
        out.append((label, pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000, pct(during, 0.99) * 1000))
    del_probe = [l for (t, l) in samples if t_del_start - 0.01 <= t <= t_del_end + 0.01]
    return {"rows": out, "bytes_used": (after[0] - base[0]) / n, "bytes_rss": (after[1] - base[1]) / n,
            "encoding": enc, "fill_s": fill_s, "unlink_ms": unlink_ms, "del_ms": del_ms,
            "del_probe_max_ms": max(del_probe) * 1000 if del_probe else 0.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--types", default="set,hash,zset,list")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--servers", default="redis,larder")
    ap.add_argument("--list-compress-depth", type=int, default=0)
    args = ap.parse_args()
    starters = {"redis": lambda: start_redis(), "larder": lambda: start_larder(threads=args.threads)}
    for n in [int(x) for x in args.sizes.split(",")]:
        for typ in args.types.split(","):
            res = {}
            for name in args.servers.split(","):
                srv = starters[name]()
                try:
                    res[name] = measure(srv, typ, n, args.calls, args.list_compress_depth)
                finally:
                    srv.stop()
            encodings = ", ".join(f"{k}: {v['encoding']}" for k, v in res.items())
            print(f"\n{typ}, {n:,} members ({encodings})")
            names = list(res)
            head = f"{'command':<24}" + "".join(f" | {k + ' p50':>11} {'p99':>7} {'probe p99':>9}" for k in names)
            if len(names) == 2:
                head += f" | {'p99 x':>6}"
            print(head)
            for i, (label, *_rest) in enumerate(res[names[0]]["rows"]):
                line = f"{label:<24}"
                for k in names:
                    _, p50, p99, probe = res[k]["rows"][i]
                    line += f" | {p50:>11.3f} {p99:>7.3f} {probe:>9.3f}"
                if len(names) == 2:
                    a, b = res[names[0]]["rows"][i][2], res[names[1]]["rows"][i][2]
                    line += f" | {b / a if a else 0:>6.2f}"
                print(line)
            for k in names:
                r = res[k]
                print(f"{k:>6}: {r['bytes_used']:.1f} B/element used_memory, {r['bytes_rss']:.1f} RSS; "
                      f"fill {r['fill_s']:.1f} s; UNLINK {r['unlink_ms']:.2f} ms, DEL {r['del_ms']:.2f} ms "
                      f"(probe max during DEL {r['del_probe_max_ms']:.2f} ms)")
            if len(names) == 2:
                print(f"bytes/element used_memory x {res[names[1]]['bytes_used'] / res[names[0]]['bytes_used']:.2f}")


if __name__ == "__main__":
    main()
