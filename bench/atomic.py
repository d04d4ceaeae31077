#!/usr/bin/env python3
"""Transactions and scripts: redis-server vs larder-server in the same run,
alternating rounds, the best round of each reported (as bench/compare.py).

  EVALSHA  a script doing INCR and EXPIRE on one key (1M-key space), with
           redis-benchmark: `redis-benchmark -P p evalsha SHA 1 key 100`.
  MULTI    MULTI, three SETs, EXEC, one transaction a request, with the
           small client in benchlib.fixed_reply_load (redis-benchmark cannot
           send a block). Its keys are drawn apart (`spread`: three random
           keys, so at --threads 2 most blocks span both shards) or under one
           hash tag (`tagged`: one shard).
  3xSET    the same three SETs without MULTI/EXEC through the same client:
           what the transaction adds over its commands.

At pipeline 1 and 16, 50 clients. CPU microseconds per request (process
utime + stime from /proc/<pid>/stat around each round, divided by the
requests; a MULTI request is the whole block) is the figure to compare: the
Python client of MULTI and 3xSET is itself the bottleneck of throughput on a
small machine. Not a pass/fail test.

  LARDER_BIN=build/larder-server /usr/bin/python3 bench/atomic.py [--threads 2]
"""
import argparse
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import encode_command, fixed_reply_load, server_threads  # noqa: E402
from compare import cpu_seconds  # noqa: E402
from server import start_redis, start_target  # noqa: E402

SCRIPT = "redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1]) return 1"
MULTI_REPLY = b"+OK\r\n" + b"+QUEUED\r\n" * 3 + b"*3\r\n" + b"+OK\r\n" * 3
SETS_REPLY = b"+OK\r\n" * 3


def evalsha_load(port, sha, requests, clients, pipeline):
    import csv
    import io
    import subprocess
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", str(clients),
                          "-P", str(pipeline), "-r", "1000000", "--csv",
                          "evalsha", sha, "1", "key:__rand_int__", "100"],
                         capture_output=True, text=True, check=True).stdout
    row = list(csv.DictReader(io.StringIO(out)))[0]
    return float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"])


def blocks(kind, n=2048, seed=1):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if kind.endswith("tagged"):
            tag = rng.randrange(1000000)
            keys = [f"{{u{tag}}}:{j}" for j in range(3)]
        else:
            keys = [f"key:{rng.randrange(1000000)}" for _ in range(3)]
        sets = b"".join(encode_command("SET", k, "x" * 100) for k in keys)
        out.append(encode_command("MULTI") + sets + encode_command("EXEC") if kind.startswith("multi") else sets)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None,
                    help="larder-server shard threads (default: the server's own default for this machine)")
    ap.add_argument("--requests", type=int, default=200_000, help="EVALSHA requests per round")
    ap.add_argument("--transactions", type=int, default=100_000, help="MULTI blocks per round")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=None, help="comma-separated tests (evalsha,multi-spread,multi-tagged,sets)")
    args = ap.parse_args()

    redis = start_redis()
    # LARDER_TEST_TARGET=redis: a second redis-server in larder's place (a
    # check of the bench itself; the ratios should then be near 1).
    larder = start_target(threads=args.threads)
    servers = {"redis": redis, "larder": larder}
    larder_threads = server_threads(larder)
    payloads = {k: blocks(k) for k in ("multi-spread", "multi-tagged", "sets")}
    tests = ["evalsha", "multi-spread", "multi-tagged", "sets"]
    if args.only:
        tests = [t for t in tests if t in args.only.split(",")]
    sha = None
    if "evalsha" in tests:
        for s in servers.values():
            c = s.conn()
            got = c.cmd("SCRIPT", "LOAD", SCRIPT)
            c.close()
            if not isinstance(got, bytes):
                raise SystemExit(f"SCRIPT LOAD failed on {s.cmdline[0]}: {got!r}")
            sha = got.decode()
    print(f"bench/atomic.py: {args.clients} clients; EVALSHA {args.requests} requests (redis-benchmark), "
          f"MULTI/SETs {args.transactions} per round (benchlib.fixed_reply_load); larder --threads "
          f"{larder_threads}; best of {args.rounds} alternating rounds; {os.cpu_count()} cores")
    print(f"{'test':<13} {'P':>3} | {'redis rps':>10} {'p50':>6} {'p99':>6} {'cpu us':>7} | "
          f"{'larder rps':>10} {'p50':>6} {'p99':>6} {'cpu us':>7} | {'rps x':>6} {'cpu x':>6}")
    try:
        for pipeline in (1, 16):
            for test in tests:
                best = {}
                for _ in range(args.rounds):
                    for name, srv in servers.items():
                        c0 = cpu_seconds(srv.proc.pid)
                        if test == "evalsha":
                            n = args.requests
                            rps, p50, p99 = evalsha_load(srv.port, sha, n, args.clients, pipeline)
                        else:
                            n = args.transactions
                            reply = SETS_REPLY if test == "sets" else MULTI_REPLY
                            rps, p50, p99 = fixed_reply_load(srv.port, payloads[test], reply, n,
                                                             args.clients, pipeline)
                        cpu = (cpu_seconds(srv.proc.pid) - c0) / n * 1e6
                        if name not in best or rps > best[name][0]:
                            best[name] = (rps, p50, p99, cpu)
                r, l = best["redis"], best["larder"]
                print(f"{test:<13} {pipeline:>3} | {r[0]:>10,.0f} {r[1]:>6.2f} {r[2]:>6.2f} {r[3]:>7.2f} | "
                      f"{l[0]:>10,.0f} {l[1]:>6.2f} {l[2]:>6.2f} {l[3]:>7.2f} | {l[0] / r[0]:>6.2f} "
                      f"{(l[3] / r[3]) if r[3] else float('nan'):>6.2f}", flush=True)
    finally:
        redis.stop()
        larder.stop()


if __name__ == "__main__":
    main()
