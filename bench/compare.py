#!/usr/bin/env python3
"""Throughput, latency and CPU per request: redis-server vs larder-server in
the same run, alternating, with redis-benchmark as the load generator.

  SET and GET, 50 clients, 100-byte values, 1M-key space, pipeline 1 and 16.

For each (test, pipeline) the two servers are measured `--rounds` times in
turn; the best round of each is reported (least disturbed by the noisy
neighbour that the load generator itself is on a small machine). CPU seconds
per million requests come from /proc/<pid>/stat (utime + stime) around each
round. Not a pass/fail test.

--tls measures the same over TLS: both servers get a tls-port with the same
certificates (made with the openssl tool, tests/lib/certs.py; client
certificates required, TLSv1.3, the session cache on) and redis-benchmark
connects with --tls --cert --key. Each redis-benchmark connection does its
handshake once, at the start of the run.
"""
import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from certs import make_certs, server_args  # noqa: E402
from server import free_port, start_larder, start_redis  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / TICK


def run_benchmark(port, test, pipeline, requests, clients, tls_args=()):
    cmd = ["redis-benchmark", "-p", str(port), "-t", test, "-n", str(requests), "-c", str(clients),
           "-d", "100", "-r", "1000000", "-P", str(pipeline), "--csv"] + list(tls_args)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    row = rows[0]
    return float(row["rps"]), float(row["p50_latency_ms"]), float(row["p99_latency_ms"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None,
                    help="larder-server shard threads (default: the server's own default for this machine)")
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tls", action="store_true", help="benchmark the servers' TLS ports")
    args = ap.parse_args()

    server_tls, client_tls = {"redis": [], "larder": []}, []
    if args.tls:
        c = make_certs(tempfile.mkdtemp(prefix="larder-bench-certs-"))
        for name in server_tls:
            server_tls[name] = ["--tls-port", str(free_port())] + server_args(c)
        client_tls = ["--tls", "--cacert", c.ca, "--cert", c.client_crt, "--key", c.client_key]
    redis = start_redis(server_tls["redis"])
    larder = start_larder(args=server_tls["larder"], threads=args.threads)  # None: its default
    servers = {"redis": redis, "larder": larder}
    # The port each is measured on: its TLS port with --tls.
    ports = {n: int(server_tls[n][1]) if args.tls else s.port for n, s in servers.items()}
    c = larder.conn()
    larder_threads = c.cmd("CONFIG", "GET", "threads")[1].decode()
    c.close()
    print(f"redis-benchmark{' --tls' if args.tls else ''}: {args.requests} requests, {args.clients} clients, 100-byte values, 1M keys; "
          f"larder --threads {larder_threads}; best of {args.rounds} alternating rounds; {os.cpu_count()} cores")
    print(f"{'test':<5} {'P':>3} | {'redis rps':>11} {'p50':>6} {'p99':>6} {'cpu s/M':>8} | "
          f"{'larder rps':>11} {'p50':>6} {'p99':>6} {'cpu s/M':>8} | {'rps x':>6} {'cpu x':>6}")
    try:
        for pipeline in (1, 16):
            for test in ("set", "get"):
                best = {}
                for _ in range(args.rounds):
                    for name, srv in servers.items():
                        c0 = cpu_seconds(srv.proc.pid)
                        rps, p50, p99 = run_benchmark(ports[name], test, pipeline, args.requests, args.clients,
                                                      client_tls)
                        cpu = (cpu_seconds(srv.proc.pid) - c0) / args.requests * 1e6
                        if name not in best or rps > best[name][0]:
                            best[name] = (rps, p50, p99, cpu)
                r, l = best["redis"], best["larder"]
                print(f"{test.upper():<5} {pipeline:>3} | {r[0]:>11,.0f} {r[1]:>6.3f} {r[2]:>6.3f} {r[3]:>8.2f} | "
                      f"{l[0]:>11,.0f} {l[1]:>6.3f} {l[2]:>6.3f} {l[3]:>8.2f} | {l[0] / r[0]:>6.2f} "
                      f"{(l[3] / r[3]) if r[3] else float('nan'):>6.2f}")
    finally:
        redis.stop()
        larder.stop()


if __name__ == "__main__":
    main()
