"""Differential harness: the same commands go to Debian's redis-server and to
larder-server, and every reply must be identical, error texts included.

A few replies cannot be identical by nature and are normalised, each for a
stated reason (see NORMALISE below). Everything else is compared exactly.
"""
import os
import shlex
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from resp import Error, encode  # noqa: E402
from server import start_larder, start_redis  # noqa: E402

COMMON_ARGS = ["--enable-debug-command", "yes"]


def _sorted(reply):
    return sorted(reply, key=repr) if isinstance(reply, list) else reply


def _tolerant(slack):
    """Integer replies that depend on the clock (TTLs): equal within `slack`,
    and both negative codes (-1, -2) must match exactly."""

    def cmp(a, b):
        if isinstance(a, int) and isinstance(b, int) and a >= 0 and b >= 0:
            return abs(a - b) <= slack
        return a == b

    return cmp


def _same_kind(a, b):
    """Replies that are random or per-process (RANDOMKEY, TIME...): same shape."""
    return type(a) is type(b) and (a is None) == (b is None)


def _pairs(reply):
    if isinstance(reply, list) and len(reply) % 2 == 0:
        return sorted(zip(reply[::2], reply[1::2]), key=repr)
    return reply


def _mask_id(reply):
    """HELLO's reply names the client id, which each server counts itself."""
    if isinstance(reply, list) and b"id" in reply:
        reply = list(reply)
        reply[reply.index(b"id") + 1] = "<id>"
    return reply


# command (lower case) -> function(redis_reply, larder_reply) -> bool
NORMALISE = {
    # Key order depends on hash table layout, which no two servers share.
    "keys": lambda a, b: _sorted(a) == _sorted(b),
    # A map whose order is the server's own hash table order.
    "config|get": lambda a, b: _pairs(a) == _pairs(b),
    "hello": lambda a, b: _mask_id(a) == _mask_id(b),
    # Clock-dependent: the two servers run the command a few ms apart.
    "ttl": _tolerant(1),
    "pttl": _tolerant(1500),
    "expiretime": _tolerant(2),
    "pexpiretime": _tolerant(1500),
    "object|idletime": _tolerant(2),
    # Random or per-process values: only the kind of reply must agree.
    "randomkey": _same_kind,
    "time": _same_kind,
}


def command_name(args):
    name = args[0].lower() if isinstance(args[0], str) else args[0].decode().lower()
    if name in ("object", "config", "client", "command", "debug") and len(args) > 1:
        sub = args[1].lower() if isinstance(args[1], str) else args[1].decode().lower()
        return f"{name}|{sub}"
    return name


class Mismatch(AssertionError):
    pass


class Differ:
    """Holds a connection to each server and compares their replies."""

    def __init__(self, redis, larder):
        self.redis = redis.conn()
        self.larder = larder.conn()
        self.count = 0
        self.history = []

    def close(self):
        self.redis.close()
        self.larder.close()

    def compare(self, args, a, b):
        self.count += 1
        self.history.append(args)
        if len(self.history) > 30:
            self.history.pop(0)
        cmp = NORMALISE.get(command_name(args))
        same = cmp(a, b) if cmp else a == b
        if not same:
            recent = "\n".join("  " + " ".join(map(str, h)) for h in self.history[-30:])
            raise Mismatch(f"reply differs for {args!r}\n  redis:  {a!r}\n  larder: {b!r}\nlast commands:\n{recent}")

    def run(self, *args):
        a = self.redis.cmd(*args)
        b = self.larder.cmd(*args)
        self.compare(args, a, b)
        return a

    def run_batch(self, commands):
        """Pipelines a batch to each server, then compares reply by reply."""
        ra = self.redis.pipeline(commands)
        rb = self.larder.pipeline(commands)
        for args, a, b in zip(commands, ra, rb):
            self.compare(args, a, b)

    def run_script(self, text, name="script"):
        """Runs a case file: one command per line in redis-cli quoting; lines
        starting with '#' are comments."""
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            args = shlex.split(line)
            try:
                self.run(*args)
            except Mismatch as e:
                raise Mismatch(f"{name}:{lineno}: {e}") from None


def start_pair(threads=2):
    redis = start_redis(COMMON_ARGS)
    larder = start_larder(COMMON_ARGS, threads=threads)
    return redis, larder
