#!/usr/bin/env python3
"""PUBLISH fan-out: redis-server vs larder-server in the same run,
alternating rounds, the best round of each reported.

50 subscribers (one connection each, spread by the server over its
threads) subscribe to one channel; redis-benchmark publishes `--messages`
messages of `--size` bytes to it (`redis-benchmark -c 4 -P 16 publish ch
PAYLOAD`). A round ends when every subscriber has received every message
(counted by bytes: every message frame has the same length). Reported:
messages delivered per second (publishes x subscribers / wall time) and
server CPU microseconds per delivered message (utime + stime from
/proc/<pid>/stat around the round). The subscribers are read by one
Python process with a selector; on a small machine it competes with the
server for the cores, so CPU per message is the figure to compare. Not a
pass/fail test.

  LARDER_BIN=build/larder-server /usr/bin/python3 bench/pubsub.py [--threads 2]
"""
import argparse
import os
import selectors
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import encode_command, server_threads  # noqa: E402
from compare import cpu_seconds  # noqa: E402
from server import start_redis, start_target  # noqa: E402

CHANNEL = "fanout"


def frame_length(payload):
    """Bytes of one `message` frame of `payload` on CHANNEL (RESP2)."""
    parts = [b"message", CHANNEL.encode(), payload]
    return len(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))


def subscribe_all(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(encode_command("SUBSCRIBE", CHANNEL))
        want = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL.encode())
        got = b""
        while len(got) < len(want):
            got += s.recv(4096)
        assert got == want, got
        s.setblocking(False)
        socks.append(s)
    return socks


def drain(socks, expected_bytes, done):
    sel = selectors.DefaultSelector()
    left = {s: expected_bytes for s in socks}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while left:
        for key, _ in sel.select(timeout=60):
            s = key.fileobj
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise SystemExit("a subscriber was disconnected")
            left[s] -= len(chunk)
            if left[s] <= 0:
                sel.unregister(s)
                del left[s]
    done.set()


def one_round(srv, subscribers, messages, payload):
    socks = subscribe_all(srv.port, subscribers)
    try:
        done = threading.Event()
        reader = threading.Thread(target=drain, args=(socks, messages * frame_length(payload), done))
        reader.start()
        c0 = cpu_seconds(srv.proc.pid)
        t0 = time.monotonic()
        subprocess.run(["redis-benchmark", "-p", str(srv.port), "-n", str(messages), "-c", "4", "-P", "16", "-q",
                        "publish", CHANNEL, payload.decode()], capture_output=True, check=True)
        reader.join(300)
        if not done.is_set():
            raise SystemExit("the subscribers did not receive every message")
        wall = time.monotonic() - t0
        cpu = cpu_seconds(srv.proc.pid) - c0
        delivered = messages * subscribers
        return delivered / wall, cpu / delivered * 1e6
    finally:
        for s in socks:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None, help="larder-server shard threads")
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=32, help="payload bytes")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    payload = b"x" * args.size
    redis = start_redis()
    larder = start_target(threads=args.threads)
    servers = {"redis": redis, "larder": larder}
    threads = server_threads(larder)
    print(f"bench/pubsub.py: {args.subscribers} subscribers, {args.messages} PUBLISH of {args.size} B "
          f"(redis-benchmark -c 4 -P 16); larder --threads {threads}; best of {args.rounds}; "
          f"{os.cpu_count()} cores")
    best = {}
    try:
        for _ in range(args.rounds):
            for name, srv in servers.items():
                rate, cpu = one_round(srv, args.subscribers, args.messages, payload)
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, cpu)
    finally:
        redis.stop()
        larder.stop()
    r, l = best["redis"], best["larder"]
    print(f"{'':<8} {'delivered/s':>12} {'cpu us/msg':>11}")
    print(f"{'redis':<8} {r[0]:>12,.0f} {r[1]:>11.3f}")
    print(f"{'larder':<8} {l[0]:>12,.0f} {l[1]:>11.3f}")
    print(f"{'ratio':<8} {l[0] / r[0]:>12.2f} {l[1] / r[1]:>11.2f}")


if __name__ == "__main__":
    main()
