#!/usr/bin/env python3
"""User-space instructions per request, counted by callgrind: redis-server vs
larder-server (--threads 1 and 2), same load, same run.

  SET and GET, 50 clients, 100-byte values, 1M-key space, pipeline 1 and 16.

Each server runs under `valgrind --tool=callgrind`. Before each measured
redis-benchmark run the counters are zeroed (callgrind_control -z) and after
it they are dumped (callgrind_control -d); the dump's total instruction count
(all threads) divided by the requests sent is the figure. Instruction counts
do not depend on what else the machine is doing, so unlike CPU seconds they
repeat from run to run (within a fraction of a percent: the scheduling of the
shard threads still varies a little). They count user space only: system
calls cost kernel time that this figure does not see (bench/compare.py, CPU
seconds from /proc, counts both).

The SET run comes first and fills the key space, so the GETs hit.
Not a pass/fail test.
"""
import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from resp import Conn  # noqa: E402
from server import free_port, larder_bin  # noqa: E402


class CallgrindServer:
    def __init__(self, argv, name):
        self.name = name
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="larder-callgrind-")
        self.out = os.path.join(self.dir, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}.%p", "--dump-instr=no",
               "--compress-strings=no"] + argv + ["--port", str(self.port), "--dir", self.dir]
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: " + open(os.path.join(self.dir, "log")).read()[-3000:])
            try:
                c = Conn(self.port, timeout=10)
                c.cmd("PING")
                c.close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    def control(self, flag):
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], check=True, capture_output=True)

    def total_since_zero(self):
        """Dumps the counters and returns the instructions in that dump."""
        before = set(glob.glob(self.out + ".*"))
        self.control("-d")
        deadline = time.time() + 60
        while True:
            fresh = sorted(set(glob.glob(self.out + ".*")) - before)
            if fresh:
                time.sleep(0.5)  # let callgrind finish writing the file
                with open(fresh[-1]) as f:
                    for line in f:
                        if line.startswith("summary:") or line.startswith("totals:"):
                            return int(line.split()[1])
            if time.time() > deadline:
                raise RuntimeError("no callgrind dump appeared")
            time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def benchmark(port, test, pipeline, requests, clients):
    subprocess.run(["redis-benchmark", "-p", str(port), "-t", test, "-n", str(requests), "-c", str(clients),
                    "-d", "100", "-r", "1000000", "-P", str(pipeline), "-q"],
                   check=True, capture_output=True, text=True)


def measure(server, requests, clients):
    results = {}
    for pipeline in (1, 16):
        for test in ("set", "get"):
            server.control("-z")
            benchmark(server.port, test, pipeline, requests, clients)
            results[(test, pipeline)] = server.total_since_zero() / requests
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--threads", default="1,2", help="larder-server thread counts to measure")
    args = ap.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")

    configs = [("redis", [shutil.which("redis-server"), "--save", "", "--appendonly", "no"])]
    for t in args.threads.split(","):
        configs.append((f"larder t{t}", [larder_bin(), "--threads", t, "--save", ""]))
    table = {}
    for name, argv in configs:
        srv = CallgrindServer(argv, name)
        try:
            table[name] = measure(srv, args.requests, args.clients)
        finally:
            srv.stop()

    names = [n for n, _ in configs]
    print(f"callgrind, user-space instructions per request; redis-benchmark {args.requests} requests, "
          f"{args.clients} clients, 100-byte values, 1M keys; {os.cpu_count()} cores")
    header = f"{'test':<5} {'P':>3} | " + " | ".join(f"{n:>10}" for n in names) + " | " + \
        " | ".join(f"{n + ' x':>10}" for n in names[1:])
    print(header)
    for pipeline in (1, 16):
        for test in ("set", "get"):
            row = [table[n][(test, pipeline)] for n in names]
            ratios = [v / row[0] for v in row[1:]]
            print(f"{test.upper():<5} {pipeline:>3} | " + " | ".join(f"{v:>10,.0f}" for v in row) + " | " +
                  " | ".join(f"{r:>10.2f}" for r in ratios))


if __name__ == "__main__":
    main()
