"""Helpers the bench scripts share."""
import re
import subprocess


def redis_benchmark(port, command, requests, keys, pipeline, clients=50, extra=()):
    """Runs redis-benchmark for one command (a list of words, __rand_int__
    in them drawn from `keys`); returns its requests per second."""
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(requests), "-r", str(keys), "-c",
                          str(clients), "-P", str(pipeline), "-q", *extra, *command],
                         check=True, capture_output=True, text=True).stdout
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def fixed_reply_load(port, payloads, reply, requests, clients=50, pipeline=1, timeout=120):
    """A load generator for requests whose reply is known byte for byte (a
    MULTI/SET/SET/SET/EXEC block always answers the same 51 bytes): each of
    `clients` connections sends `pipeline` requests (cycling through
    `payloads`, each one request's bytes), waits for exactly that many
    replies' bytes, and repeats until `requests` are done. No reply parsing,
    so one Python process keeps up with more; the first reply of each
    connection is checked against `reply`. Returns (requests per second,
    p50 ms, p99 ms) with the latency of each pipeline round trip."""
    import selectors
    import socket
    import time

    sel = selectors.DefaultSelector()
    conns = []
    sent = 0
    for i in range(clients):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append({"sock": s, "want": 0, "next": i, "first": b"", "t0": 0.0})
        sel.register(s, selectors.EVENT_READ, conns[-1])
    latencies = []
    done = 0

    def send(c):
        nonlocal sent
        n = min(pipeline, requests - sent)
        if n <= 0:
            return
        parts = []
        for _ in range(n):
            parts.append(payloads[c["next"] % len(payloads)])
            c["next"] += 1
        sent += n
        c["n"] = n
        c["want"] = n * len(reply)
        c["t0"] = time.perf_counter()
        c["sock"].setblocking(True)
        c["sock"].sendall(b"".join(parts))
        c["sock"].setblocking(False)

    start = time.perf_counter()
    for c in conns:
        send(c)
    deadline = time.time() + timeout
    while done < requests:
        if time.time() > deadline:
            raise TimeoutError(f"fixed_reply_load: {done} of {requests} after {timeout} s")
        for key, _ in sel.select(timeout=1):
            c = key.data
            data = c["sock"].recv(1 << 20)
            if not data:
                raise ConnectionError("server closed a benchmark connection")
            if len(c["first"]) < len(reply):
                c["first"] += data[:len(reply) - len(c["first"])]
                if len(c["first"]) == len(reply) and c["first"] != reply:
                    raise AssertionError(f"unexpected reply {c['first']!r}, want {reply!r}")
            c["want"] -= len(data)
            if c["want"] == 0:
                latencies.append(time.perf_counter() - c["t0"])
                done += c["n"]
                send(c)
    elapsed = time.perf_counter() - start
    for c in conns:
        c["sock"].close()
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return requests / elapsed, p(0.5), p(0.99)


def server_threads(srv):
    """larder-server's `threads` setting, or "(redis-server)" for a
    redis-server in its place (LARDER_TEST_TARGET=redis)."""
    c = srv.conn()
    try:
        got = c.cmd("CONFIG", "GET", "threads")
    finally:
        c.close()
    return got[1].decode() if isinstance(got, list) and len(got) == 2 else "(redis-server)"
