#!/usr/bin/env python3
"""Snapshots: redis-server vs larder-server in the same run (one server after
the other, each on its own port and temp dir), with the ratio larder / redis.

For each server:
  load        DEBUG POPULATE <keys> (keys key:N, values value:N).
  baseline    a rate-limited GET/SET load (50/50, random keys of the
              populated range, pipeline 1) for --baseline seconds: p50/p99
              latency without a snapshot, and the server's RSS.
  snapshot    BGSAVE while the same load runs: p50/p99 latency from BGSAVE
              until INFO says rdb_bgsave_in_progress:0 (the snapshot time;
              rdb_last_bgsave_time_sec too), and the peak RSS while it runs:
              VmRSS of the server, and for redis-server of the server plus its
              forked child (the sum counts pages the two still share twice, so
              it is an upper bound; INFO rdb_last_cow_size is redis's own count
              of the pages copied), sampled every 10 ms, against the RSS before.
  warm-up     --warmup seconds of the load, not counted.
  rounds      baseline and snapshot alternate --rounds times under the same
              load (the machine's noise drifts over minutes: each snapshot is
              compared with baselines taken around it); the p50/p99 are of the
              pooled windows of each kind, each round's p99 is printed too,
              and the snapshot time is the median round's.
  restart     the server started on the file it wrote: time from exec until
              INFO loading:0 (and DBSIZE is the number of keys populated).

The load: --procs client processes, each with --conns connections and an
open-loop schedule of --rate/--procs requests per second; one request in
flight per connection. Latency is measured from the moment the request was
sent ("p99") and from the moment it was due by the schedule ("p99 due": it
also counts the time a request waited because every connection was still
waiting on the server, so a stall shows in it even though it stops the
clients from sending). The rate is kept well below what either server can do
so that the latency reflects the snapshot, not saturation.

Larder's goals (issue 15): p99 during the snapshot at most 1.5x without it,
peak memory at most 1.1x before.

Not a pass/fail test.

  LARDER_BIN=build/larder-server nice /usr/bin/python3 bench/snapshot.py [--keys 10000000]
"""
import argparse
import multiprocessing as mp
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import encode_command  # noqa: E402
from server import start_larder, start_redis  # noqa: E402
from resp import Conn  # noqa: E402


def info(conn, section):
    out = {}
    for line in conn.cmd("INFO", section).decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def reply_end(buf, start):
    """The end of the one RESP reply (simple, error or bulk string) at
    buf[start:], or -1 while it is incomplete."""
    nl = buf.find(b"\r\n", start)
    if nl < 0:
        return -1
    if buf[start:start + 1] != b"$":
        return nl + 2
    n = int(buf[start + 1:nl])
    if n < 0:
        return nl + 2
    end = nl + 2 + n + 2
    return end if len(buf) >= end else -1


def load_worker(port, rate, conns, keys, seed, stop, out):
    """Open-loop GET/SET load until `stop` is set; puts a list of
    (due, sent, received) perf_counter times on `out`."""
    import selectors
    rnd = random.Random(seed)
    sel = selectors.DefaultSelector()
    free = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = {"sock": s, "buf": b"", "due": 0.0, "sent": 0.0}
        sel.register(s, selectors.EVENT_READ, c)
        free.append(c)
    samples = []
    interval = 1.0 / rate
    nxt = time.perf_counter()
    errors = 0
    while not stop.is_set():
        now = time.perf_counter()
        while free and now >= nxt:
            c = free.pop()
            k = rnd.randrange(keys)
            if rnd.random() < 0.5:
                req = encode_command("GET", f"key:{k}")
            else:
                req = encode_command("SET", f"key:{k}", f"value:{k}")
            c["due"], c["sent"], c["buf"] = nxt, now, b""
            c["sock"].send(req)  # a few dozen bytes: the socket buffer takes it whole
            nxt += interval
        timeout = max(0.0, nxt - time.perf_counter()) if free else 0.05
        for key, _ in sel.select(timeout=min(timeout, 0.05)):
            c = key.data
            data = c["sock"].recv(65536)
            if not data:
                raise ConnectionError("server closed a benchmark connection")
            c["buf"] += data
            end = reply_end(c["buf"], 0)
            if end >= 0:
                if c["buf"][:1] == b"-":
                    errors += 1
                samples.append((c["due"], c["sent"], time.perf_counter()))
                free.append(c)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    out.put((samples, errors))


class Load:
    def __init__(self, port, rate, procs, conns, keys):
        self.stop = mp.Event()
        self.out = mp.Queue()
        self.procs = [mp.Process(target=load_worker,
                                 args=(port, rate / procs, conns, keys, i, self.stop, self.out))
                      for i in range(procs)]
        for p in self.procs:
            p.start()

    def finish(self):
        self.stop.set()
        samples, errors = [], 0
        for _ in self.procs:
            s, e = self.out.get(timeout=120)
            samples += s
            errors += e
        for p in self.procs:
            p.join()
        return samples, errors


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def window(samples, t0, t1):
    """Latencies (ms) from sending and from the due time of the requests
    sent in [t0, t1)."""
    return windows(samples, [(t0, t1)])


def windows(samples, spans):
    """As window, over the requests sent in any of `spans`."""
    def inside(s):
        return any(t0 <= s < t1 for t0, t1 in spans)
    picked = [(d, s, r) for d, s, r in samples if inside(s)]
    sent = [(r - s) * 1000 for d, s, r in picked]
    due = [(r - d) * 1000 for d, s, r in picked]
    t0, t1 = 0.0, sum(b - a for a, b in spans)
    return {"n": len(sent), "rps": len(sent) / max(t1 - t0, 1e-9), "p50": pct(sent, 0.5), "p99": pct(sent, 0.99),
            "max": max(sent) if sent else float("nan"), "p99due": pct(due, 0.99)}


def start(name, dir, args):
    common = ["--enable-debug-command", "yes", "--dbfilename", "dump.rdb"] + list(args)
    if name == "redis":
        return start_redis(["--io-threads", "2"] + common, dir=dir)
    return start_larder(common, threads=2, dir=dir)


def bench_server(name, args):
    r = {}
    srv = start(name, None, args.server_arg)
    pid = srv.proc.pid
    c = srv.conn(timeout=600)
    try:
        t = time.perf_counter()
        c.cmd("DEBUG", "POPULATE", str(args.keys))
        r["populate_s"] = time.perf_counter() - t
        assert c.cmd("DBSIZE") == args.keys, c.cmd("DBSIZE")
        time.sleep(1)

        load = Load(srv.port, args.rate, args.procs, args.conns, args.keys)
        # Connections up, schedule running, and the machine settled: right
        # after a 10M-key populate (and after the previous server's exit,
        # which frees its memory and files) the first seconds' p99 was off
        # by up to 20x, for both servers, snapshot or not.
        time.sleep(args.warmup)
        # Rounds of (baseline window, snapshot window) under the same load:
        # the machine's own noise drifts over minutes, so each snapshot is
        # compared with baselines taken around it, and the p99s are of the
        # pooled windows.
        base_w, snap_w = [], []
        rss_before, peak_self, peak_sum = 0, 0, 0
        snap_s, bgsave_secs, cows = [], [], []
        for _ in range(args.rounds):
            b0 = time.perf_counter()
            while time.perf_counter() - b0 < args.baseline:
                rss_before = max(rss_before, rss_kb(pid))
                time.sleep(0.01)
            base_w.append((b0, time.perf_counter()))

            s0 = time.perf_counter()
            reply = c.cmd("BGSAVE")
            assert "started" in str(reply), reply
            last_poll = 0.0
            while True:
                now = time.perf_counter()
                own = rss_kb(pid)
                kids = sum(rss_kb(k) for k in children(pid))
                peak_self = max(peak_self, own)
                peak_sum = max(peak_sum, own + kids)
                if now - last_poll >= 0.02:
                    last_poll = now
                    if info(c, "persistence")["rdb_bgsave_in_progress"] == "0":
                        break
                if now - s0 > 1800:
                    raise TimeoutError("BGSAVE did not finish in 30 minutes")
                time.sleep(0.01)
            s1 = time.perf_counter()
            snap_w.append((s0, s1))
            snap_s.append(s1 - s0)
            p = info(c, "persistence")
            assert p["rdb_last_bgsave_status"] == "ok", p
            bgsave_secs.append(int(p["rdb_last_bgsave_time_sec"]))
            cows.append(int(p.get("rdb_last_cow_size", "0")) / 2**20)
        time.sleep(1)
        samples, errors = load.finish()

        r["errors"] = errors
        r["base"] = windows(samples, base_w)
        r["snap"] = windows(samples, snap_w)
        if args.timeline:
            t, end = base_w[0][0], snap_w[-1][1]
            print(f"{name}: p99 per second (S: a snapshot runs)")
            while t < end:
                w = window(samples, t, t + 1)
                mark = "S" if any(a <= t < b for a, b in snap_w) else " "
                print(f"  {t - base_w[0][0]:6.0f}s {mark} n={w['n']:5d} p50={w['p50']:.3f} p99={w['p99']:.3f} max={w['max']:.1f}")
                t += 1
        r["base_rounds"] = [window(samples, a, b)["p99"] for a, b in base_w]
        r["snap_rounds"] = [window(samples, a, b)["p99"] for a, b in snap_w]
        r["snap_s"] = statistics.median(snap_s)
        r["bgsave_time_sec"] = statistics.median(bgsave_secs)
        r["cow_mb"] = max(cows)
        r["rss_before_mb"] = rss_before / 1024
        r["rss_peak_mb"] = peak_self / 1024
        r["rss_peak_sum_mb"] = peak_sum / 1024
        dump = os.path.join(srv.dir, "dump.rdb")
        r["file_mb"] = os.path.getsize(dump) / 2**20
        # Keep the dump: Server.stop removes the server's dir.
        keep = tempfile.mkdtemp(prefix=f"snapshot-bench-{name}-")
        shutil.move(dump, os.path.join(keep, "dump.rdb"))
    finally:
        c.close()
        srv.stop()

    # Restart on the file: time from exec until INFO loading:0.
    t = time.perf_counter()
    srv = start(name, keep, args.server_arg)
    try:
        c = srv.conn(timeout=600)
        while True:
            try:
                if info(c, "persistence")["loading"] == "0":
                    break
            except Exception:  # -LOADING replies to INFO on some servers
                pass
            time.sleep(0.01)
        r["load_s"] = time.perf_counter() - t
        assert c.cmd("DBSIZE") == args.keys, c.cmd("DBSIZE")
        m = re.search(r"DB loaded from disk: ([\d.]+) seconds", srv.read_log())
        r["log_load_s"] = float(m.group(1)) if m else None
        c.close()
    finally:
        srv.stop()
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=10_000_000)
    ap.add_argument("--rate", type=int, default=10_000, help="requests per second, all clients together")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--conns", type=int, default=10, help="connections per client process")
    ap.add_argument("--baseline", type=float, default=10.0, help="seconds of load before each BGSAVE")
    ap.add_argument("--rounds", type=int, default=3, help="baseline + snapshot rounds")
    ap.add_argument("--timeline", action="store_true", help="print each second's p50/p99")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds of load before the first round")
    ap.add_argument("--servers", default="redis,larder")
    ap.add_argument("--server-arg", action="append", default=[], help="an extra argument for both servers")
    args = ap.parse_args()

    res = {name: bench_server(name, args) for name in args.servers.split(",")}
    names = list(res)

    def row(label, get, fmt="{:>14.2f}"):
        vals = [get(res[n]) for n in names]
        line = f"{label:<34}" + "".join(fmt.format(v) if v is not None else f"{'-':>14}" for v in vals)
        if len(vals) == 2 and vals[0] and vals[1] is not None and not isinstance(vals[0], str):
            line += f"{vals[1] / vals[0]:>8.2f}"
        print(line)

    print(f"keys {args.keys:,}, load {args.rate:,} req/s GET/SET 50/50 over {args.procs}x{args.conns} connections")
    print(f"{'':<34}" + "".join(f"{n:>14}" for n in names) + ("   ratio" if len(names) == 2 else ""))
    row("DEBUG POPULATE s", lambda r: r["populate_s"])
    row("achieved req/s baseline", lambda r: r["base"]["rps"], "{:>14.0f}")
    row("achieved req/s snapshot", lambda r: r["snap"]["rps"], "{:>14.0f}")
    row("p50 ms baseline", lambda r: r["base"]["p50"], "{:>14.3f}")
    row("p50 ms snapshot", lambda r: r["snap"]["p50"], "{:>14.3f}")
    row("p99 ms baseline", lambda r: r["base"]["p99"], "{:>14.3f}")
    row("p99 ms snapshot", lambda r: r["snap"]["p99"], "{:>14.3f}")
    row("p99 snapshot / baseline", lambda r: r["snap"]["p99"] / r["base"]["p99"])
    for i in range(args.rounds):
        row(f"round {i + 1}: p99 ms base / snap", lambda r: f"{r['base_rounds'][i]:.2f} / {r['snap_rounds'][i]:.2f}",
            "{:>14}")
    row("p99 due ms baseline", lambda r: r["base"]["p99due"], "{:>14.3f}")
    row("p99 due ms snapshot", lambda r: r["snap"]["p99due"], "{:>14.3f}")
    row("max ms baseline", lambda r: r["base"]["max"], "{:>14.1f}")
    row("max ms snapshot", lambda r: r["snap"]["max"], "{:>14.1f}")
    row("snapshot s (BGSAVE to done)", lambda r: r["snap_s"])
    row("rdb_last_bgsave_time_sec", lambda r: r["bgsave_time_sec"], "{:>14.0f}")
    row("RSS before MB", lambda r: r["rss_before_mb"], "{:>14.0f}")
    row("RSS peak MB (server)", lambda r: r["rss_peak_mb"], "{:>14.0f}")
    row("RSS peak MB (server + child)", lambda r: r["rss_peak_sum_mb"], "{:>14.0f}")
    row("peak / before (server + child)", lambda r: r["rss_peak_sum_mb"] / r["rss_before_mb"])
    row("rdb_last_cow_size MB", lambda r: r["cow_mb"], "{:>14.1f}")
    row("(before + cow) / before", lambda r: (r["rss_before_mb"] + r["cow_mb"]) / r["rss_before_mb"])
    row("dump.rdb MB", lambda r: r["file_mb"], "{:>14.1f}")
    row("restart to loading:0 s", lambda r: r["load_s"])
    row("log 'DB loaded from disk' s", lambda r: r["log_load_s"], "{:>14.3f}")
    row("error replies", lambda r: r["errors"], "{:>14d}")
    if "larder" in res:
        lr = res["larder"]
        p99 = lr["snap"]["p99"] / lr["base"]["p99"]
        mem = lr["rss_peak_sum_mb"] / lr["rss_before_mb"]
        print(f"larder goals: p99 during snapshot {p99:.2f}x without (goal <= 1.5x: {'met' if p99 <= 1.5 else 'MISSED'}); "
              f"peak RSS {mem:.2f}x before (goal <= 1.1x: {'met' if mem <= 1.1 else 'MISSED'})")


if __name__ == "__main__":
    main()
