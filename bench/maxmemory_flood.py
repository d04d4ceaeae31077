#!/usr/bin/env python3
"""Write flood at the memory limit: N clients SET values of skewed sizes
(100 B to 100 KB, most of them small) under keys drawn from a large space,
while a monitor samples used_memory. Reports how far used_memory rose above
maxmemory (the sampled maximum and the server's own used_memory_peak) and
the write rate. The server must stay up and within a few percent of the limit.

    python3 bench/maxmemory_flood.py [--seconds 30] [--clients 50]
        [--maxmemory 256mb] [--policy allkeys-lru] [--redis]

With --pipe the flood is one client instead: `redis-cli --pipe` streams
--commands SETs (same sizes) as fast as the server takes them.

With --redis the same flood also runs against redis-server, for comparison.
--runs N repeats each flood on a fresh server. The integration suite runs it
briefly (tests/integration/test_maxmemory.py).
"""
import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "lib"))
from resp import Conn, encode  # noqa: E402

MIN_SIZE, MAX_SIZE = 100, 100 * 1024


def skewed_size(rng):
    # Log-uniform with a skew towards the small end: the median is ~300 B,
    # about 1 value in 30 is over 30 KB.
    return int(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** (rng.random() ** 2.5))


def parse_info(text):
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def _writer(port, seed, stop, counters, errors, pipeline=8):
    rng = random.Random(seed)
    blob = os.urandom(MAX_SIZE)
    try:
        c = Conn(port, timeout=60)
        while not stop.is_set():
            cmds = []
            for _ in range(pipeline):
                size = skewed_size(rng)
                off = rng.randrange(0, MAX_SIZE - size + 1)
                cmds.append(("SET", b"flood:%d" % rng.randrange(10**7), blob[off:off + size]))
            replies = c.pipeline(cmds)
            for r in replies:
                if isinstance(r, Exception):
                    errors.append(str(r))
            counters[seed] = counters.get(seed, 0) + len(cmds)
        c.close()
    except (OSError, ConnectionError) as e:
        errors.append(f"client {seed}: {e!r}")


def pipe_file(commands, seed=1):
    """A file of `commands` SETs in RESP, for redis-cli --pipe."""
    rng = random.Random(seed)
    blob = os.urandom(MAX_SIZE)
    fd, path = tempfile.mkstemp(prefix="larder-flood-", suffix=".resp")
    with os.fdopen(fd, "wb") as f:
        for _ in range(commands):
            size = skewed_size(rng)
            off = rng.randrange(0, MAX_SIZE - size + 1)
            f.write(encode("SET", b"flood:%d" % rng.randrange(10**7), blob[off:off + size]))
    return path


def _sampled(port, run, sample_ms):
    """Runs run() in a thread while a monitor samples used_memory; returns
    (sampled max, INFO memory, INFO stats, seconds, run's result)."""
    mon = Conn(port, timeout=30)
    mon.cmd("CONFIG", "RESETSTAT")
    result = {}
    worker = threading.Thread(target=lambda: result.update(value=run()), daemon=True)
    t0 = time.time()
    worker.start()
    sampled_max = 0
    while worker.is_alive():
        used = int(parse_info(mon.cmd("INFO", "memory"))["used_memory"])
        sampled_max = max(sampled_max, used)
        time.sleep(sample_ms / 1000)
    worker.join()
    elapsed = time.time() - t0
    info = parse_info(mon.cmd("INFO", "memory"))
    stats = parse_info(mon.cmd("INFO", "stats"))
    mon.close()
    return sampled_max, info, stats, elapsed, result.get("value")


def pipe_flood(port, path, commands, sample_ms=5):
    """One client: redis-cli --pipe sends the file at full speed. Same
    result keys as flood()."""
    cli = shutil.which("redis-cli")
    if not cli:
        raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")

    def run():
        with open(path, "rb") as f:
            p = subprocess.run([cli, "-p", str(port), "--pipe"], stdin=f, capture_output=True, text=True)
        return p.stdout + p.stderr

    sampled_max, info, stats, elapsed, out = _sampled(port, run, sample_ms)
    errors = [] if "errors: 0," in out else [out.strip()]
    return {
        "maxmemory": int(info["maxmemory"]),
        "sampled_max": sampled_max,
        "peak": int(info["used_memory_peak"]),
        "writes_per_sec": commands / elapsed,
        "evicted": int(stats["evicted_keys"]),
        "errors": errors,
    }


def flood(port, seconds=10.0, clients=50, sample_ms=5):
    """Runs the flood against a server whose maxmemory is already set.
    Returns a dict with maxmemory, the sampled maximum of used_memory, the
    server's used_memory_peak, writes per second and the errors seen."""
    stop = threading.Event()
    counters, errors = {}, []

    def run():
        threads = [threading.Thread(target=_writer, args=(port, i, stop, counters, errors), daemon=True)
                   for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=60)

    sampled_max, info, stats, elapsed, _ = _sampled(port, run, sample_ms)
    return {
        "maxmemory": int(info["maxmemory"]),
        "sampled_max": sampled_max,
        "peak": int(info["used_memory_peak"]),
        "writes_per_sec": sum(counters.values()) / elapsed,
        "evicted": int(stats["evicted_keys"]),
        "errors": errors,
    }


def report(name, r):
    mm = r["maxmemory"]
    print(f"{name}: maxmemory {mm / 2**20:.0f} MiB, sampled max used_memory {r['sampled_max'] / mm:.4f}x, "
          f"used_memory_peak {r['peak'] / mm:.4f}x, {r['writes_per_sec']:.0f} SET/s, "
          f"{r['evicted']} evicted, {len(r['errors'])} errors", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--maxmemory", default="256mb")
    ap.add_argument("--policy", default="allkeys-lru")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pipe", action="store_true", help="one client: redis-cli --pipe")
    ap.add_argument("--commands", type=int, default=60000, help="SETs in the --pipe file")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--redis", action="store_true", help="also flood redis-server")
    ap.add_argument("--port", type=int, default=0, help="flood an already running server instead")
    args = ap.parse_args()
    path = pipe_file(args.commands) if args.pipe else None

    def run(port):
        if args.pipe:
            return pipe_flood(port, path, args.commands)
        return flood(port, args.seconds, args.clients)

    mode = "pipe" if args.pipe else f"{args.clients} clients"
    try:
        if args.port:
            report(f"port {args.port} {mode}", run(args.port))
            return
        _each_server(args, run, mode)
    finally:
        if path:
            os.unlink(path)


def _each_server(args, run, mode):
    from server import start_larder, start_redis
    servers = [("larder", lambda: start_larder(["--maxmemory", args.maxmemory, "--maxmemory-policy", args.policy],
                                               threads=args.threads))]
    if args.redis:
        servers.append(("redis", lambda: start_redis(["--maxmemory", args.maxmemory,
                                                      "--maxmemory-policy", args.policy])))
    for name, start in servers:
        for _ in range(args.runs):
            srv = start()
            try:
                report(f"{name} {args.policy} {mode}", run(srv.port))
            finally:
                srv.stop()


if __name__ == "__main__":
    main()
