#!/usr/bin/env python3
"""Throws random bytes, truncated and oversized RESP frames, and valid but odd
commands at a running server over many connections, for a given time, then
checks that the server still answers. Run it against the sanitizer build:

  LARDER_SANITIZE=1 ./scripts/test.sh          # builds build-asan/
  python3 fuzz/socket_fuzz.py --seconds 180 --bin build-asan/larder-server
  python3 fuzz/socket_fuzz.py --seconds 180 --bin build-asan/larder-server --auth

--auth: the server has a password and ACL users, and most connections never
authenticate (the pre-auth paths: length limits, the 1 KB reply cap, AUTH and
HELLO with odd arguments); the others AUTH as a random user first, rightly or
wrongly, and then send what the plain run sends.
"""
import argparse
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "lib"))
from resp import Conn, encode  # noqa: E402
from server import Server  # noqa: E402

COMMANDS = [b"GET", b"SET", b"MGET", b"MSET", b"DEL", b"INCR", b"APPEND", b"SETRANGE", b"GETRANGE", b"EXPIRE",
            b"TTL", b"SCAN", b"KEYS", b"CLIENT", b"CONFIG", b"HELLO", b"OBJECT", b"COMMAND", b"LCS", b"RENAME",
            b"COPY", b"INFO", b"DBSIZE", b"SELECT", b"PING", b"ECHO", b"GETEX", b"SET", b"INCRBYFLOAT"]
SAFE_CONFIG = [b"GET"]


def random_frame(rng):
    kind = rng.random()
    if kind < 0.25:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200)))
    if kind < 0.45:
        # A valid command with random arguments, possibly truncated.
        cmd = rng.choice(COMMANDS)
        if cmd == b"CONFIG":
            args = [cmd, b"GET", b"*"]
        elif cmd == b"CLIENT":
            args = [cmd, rng.choice([b"LIST", b"INFO", b"GETNAME", b"ID", b"SETNAME"]), b"x"]
        else:
            args = [cmd] + [rng.choice([b"k", b"{t}a", b"-1", b"0", b"99999999999", b"EX", b"GET", b"*",
                                        bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20)))])
                            for _ in range(rng.randint(0, 6))]
        frame = encode(*args)
        if rng.random() < 0.3:
            frame = frame[:rng.randint(0, len(frame))]
        return frame
    if kind < 0.6:
        # Oversized or lying headers.
        return rng.choice([b"*999999999\r\n", b"*1\r\n$999999999999\r\n", b"*-5\r\n", b"*1\r\n$-1\r\n",
                           b"*2\r\n$3\r\nGET\r\n$100000\r\nabc", b"*" + b"9" * 100 + b"\r\n",
                           b"$5\r\nhello\r\n", b"*1\r\n:5\r\n", b"\r\n\r\n\r\n", b"\"unbalanced\r\n"])
    if kind < 0.8:
        return encode(b"SET", b"big", b"x" * rng.randint(1000, 200000))
    return b"".join(encode(b"SET", b"p%d" % i, b"v") for i in range(rng.randint(1, 50)))


PASSWORD = b"fuzz-pw"
USERS = [(b"default", PASSWORD), (b"alice", b"alice-pw"), (b"bob", b"bob-pw"), (b"nobody", b"x")]
AUTH_ARGS = [(b"AUTH",), (b"AUTH", PASSWORD), (b"AUTH", b"wrong"), (b"AUTH", b"a", b"b", b"c"),
             (b"HELLO", b"3", b"AUTH", b"alice", b"alice-pw"), (b"HELLO", b"3", b"AUTH", b"alice"),
             (b"HELLO", b"2", b"AUTH", b"default", b"wrong", b"SETNAME", b"x"), (b"HELLO", b"9"),
             (b"ACL", b"WHOAMI"), (b"ACL", b"SETUSER", b"eve", b"on", b">p", b"+@all"), (b"QUIT",)]


def auth_frame(rng):
    """What a client that has not authenticated sends."""
    if rng.random() < 0.4:
        return encode(*rng.choice(AUTH_ARGS))
    if rng.random() < 0.3:
        user, pw = rng.choice(USERS)
        return encode(b"AUTH", user, pw if rng.random() < 0.7 else pw + b"!")
    return random_frame(rng)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--bin", default=os.path.join("build", "larder-server"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--auth", action="store_true", help="a password and ACL users: the pre-auth paths")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    extra = []
    if args.auth:
        extra = ["--requirepass", PASSWORD.decode()]
        if os.environ.get("FUZZ_ACL_USERS", "1") == "1":
            extra += ["--user", "alice on >alice-pw ~a:* +@read +@write -@dangerous",
                      "--user", "bob on >bob-pw %R~b:* +get +set"]
    srv = Server(args.bin, ["--threads", "2"] + extra)
    sent = 0
    try:
        deadline = time.time() + args.seconds
        while time.time() < deadline:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.settimeout(0.02)
            try:
                if args.auth and rng.random() < 0.3:
                    user, pw = rng.choice(USERS)
                    s.sendall(encode(b"AUTH", user, pw))
                for _ in range(rng.randint(1, 20)):
                    s.sendall(auth_frame(rng) if args.auth else random_frame(rng))
                    sent += 1
                    try:
                        s.recv(1 << 16)
                    except socket.timeout:
                        pass
            except OSError:
                pass  # the server closed a connection after a protocol error
            s.close()
            if srv.proc.poll() is not None:
                raise SystemExit(f"server died: {srv.read_log()[-3000:]}")
        c = Conn(srv.port)
        if args.auth:
            assert c.cmd("AUTH", PASSWORD.decode()) == "OK"
        assert c.cmd("PING") == "PONG"
        c.close()
    finally:
        srv.stop()  # raises if the sanitizer reported anything
    print(f"ok: {sent} frames in {args.seconds:.0f}s, server alive, no sanitizer report")


if __name__ == "__main__":
    main()
