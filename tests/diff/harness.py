"""Differential harness: the same commands go to Debian's redis-server and to
larder-server, and every reply must be identical, error texts included.

A few replies cannot be identical by nature and are normalised, each for a
stated reason (see NORMALISE below). Everything else is compared exactly.
"""
import os
import re
import shlex
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

from resp import Error, encode  # noqa: E402
from server import start_larder, start_redis  # noqa: E402

COMMON_ARGS = ["--enable-debug-command", "yes",
               # Debian builds differ from upstream here; pin the encoding limits.
               "--hash-max-listpack-entries", "128", "--hash-max-listpack-value", "64",
               "--set-max-intset-entries", "512",
               "--zset-max-listpack-entries", "128", "--zset-max-listpack-value", "64"]


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


def _scan_content(reply):
    """A completed HSCAN/SSCAN/ZSCAN (see Differ.complete_scan): its elements,
    order-free. Cursors differ between servers; what they return must not."""
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list):
        return sorted(reply[1], key=repr)
    return reply


def _scan_page(reply):
    """A SCAN page: the cursor exactly, the keys order-free (each server walks
    its own hash table; docs/compatibility.md, Iteration). Scripted cases use
    keyspaces that fit COUNT, where both must answer cursor 0 at once."""
    if isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list):
        return [reply[0], sorted(reply[1], key=repr)]
    return reply


def _command_info(reply):
    """COMMAND INFO: subcommands order-free. Redis lists them in its hash
    table's order, which changes from one start to the next (the reply's
    nondeterministic_output_order tip); Larder in its own order."""
    if not isinstance(reply, list):
        return reply
    out = []
    for info in reply:
        if isinstance(info, list) and len(info) == 10 and isinstance(info[9], list):
            info = info[:9] + [sorted(_command_info(info[9]), key=repr)]
        out.append(info)
    return out


def _random_sample(a, b):
    """Random picks (HRANDFIELD...): same kind of reply and the same length."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b)
    return _same_kind(a, b)


def _geo_unordered(args):
    """Searches without ASC/DESC or COUNT come back in an unspecified order
    (Redis: its geohash cell walk)."""
    words = {w.lower() if isinstance(w, str) else w.decode().lower() for w in args[1:]}
    return not ({"asc", "desc", "count"} & words)


def _geo_search(args):
    def cmp(a, b):
        if _geo_unordered(args):
            return _sorted(a) == _sorted(b)
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
    """HELLO's reply names the client id, which each server counts itself,
    and the version: Larder reports 7.4.0 where the reference is 7.0.15
    (clients gate features such as redis-py's client-side cache on it;
    docs/compatibility.md, "Version")."""
    masked = {b"id": "<id>", b"version": "<version>"}
    if isinstance(reply, list) and b"id" in reply:
        reply = list(reply)
        for k, v in masked.items():
            if k in reply:
                reply[reply.index(k) + 1] = v
    if isinstance(reply, dict) and "map" in reply:  # RESP3
        reply = {"map": [(k, masked.get(k, v)) for k, v in reply["map"]]}
    return reply


# command (lower case) -> function(redis_reply, larder_reply) -> bool
def _xpending(a, b):
    """XPENDING's extended form: [id, consumer, idle ms, deliveries] per entry;
    the idle time depends on when each server ran the command."""
    if not (isinstance(a, list) and isinstance(b, list)) or len(a) != len(b):
        return a == b
    for x, y in zip(a, b):
        if isinstance(x, list) and isinstance(y, list) and len(x) == 4 == len(y):
            if x[:2] != y[:2] or x[3] != y[3] or not _tolerant(1500)(x[2], y[2]):
                return False
        elif x != y:
            return False
    return True


# Stream introspection fields that are times (idle ms, Unix ms of a
# delivery or of a consumer's last interaction) or that describe Redis's
# radix tree internals (radix-tree-nodes: Larder's index is no radix tree).
_STREAM_CLOCK_FIELDS = {"idle", "seen-time", "radix-tree-nodes"}


def _mask_stream_info(reply, key=None):
    if isinstance(reply, list):
        out = []
        for i, v in enumerate(reply):
            prev = reply[i - 1] if i % 2 == 1 else None
            if isinstance(prev, (bytes, str)) and (prev.decode() if isinstance(prev, bytes) else prev) in _STREAM_CLOCK_FIELDS:
                out.append("<masked>")
            elif isinstance(prev, (bytes, str)) and (prev.decode() if isinstance(prev, bytes) else prev) == "pending" \
                    and isinstance(v, list):
                # XINFO STREAM FULL: [id, consumer, delivery time, count] or [id, delivery time, count]
                out.append([[e[0], *e[1:-2], "<t>", e[-1]] if isinstance(e, list) and len(e) >= 3 else e for e in v])
            else:
                out.append(_mask_stream_info(v))
        return out
    return reply


NORMALISE = {
    # Key order depends on hash table layout, which no two servers share.
    "keys": lambda a, b: _sorted(a) == _sorted(b),
    "scan": lambda a, b: _scan_page(a) == _scan_page(b),
    # A map whose order is the server's own hash table order.
    "config|get": lambda a, b: _pairs(a) == _pairs(b),
    "command|info": lambda a, b: _command_info(a) == _command_info(b),
    # Redis lists commands in its command table's hash order.
    "command|list": lambda a, b: _sorted(a) == _sorted(b),
    "hello": lambda a, b: _mask_id(a) == _mask_id(b),
    # The active channels in the server's hash table order.
    "pubsub|channels": lambda a, b: _sorted(a) == _sorted(b),
    "pubsub|shardchannels": lambda a, b: _sorted(a) == _sorted(b),
    # Hash contents in storage order: equal for small (listpack) hashes, but a
    # hash table's order is its own.
    "hgetall": lambda a, b: _pairs(a) == _pairs(b),
    "hkeys": lambda a, b: _sorted(a) == _sorted(b),
    "hvals": lambda a, b: _sorted(a) == _sorted(b),
    "hscan": lambda a, b: _scan_content(a) == _scan_content(b),
    "hrandfield": _random_sample,
    # Set members: an intset is ordered like Redis's, a hash table is not.
    "smembers": lambda a, b: _sorted(a) == _sorted(b),
    "sinter": lambda a, b: _sorted(a) == _sorted(b),
    "sunion": lambda a, b: _sorted(a) == _sorted(b),
    "sdiff": lambda a, b: _sorted(a) == _sorted(b),
    "spop": lambda a, b: _sorted(a) == _sorted(b) if isinstance(a, list) else _same_kind(a, b),
    "srandmember": _random_sample,
    "sscan": lambda a, b: _scan_content(a) == _scan_content(b),
    "zscan": lambda a, b: _scan_content(a) == _scan_content(b),
    "zrandmember": _random_sample,
    # Clock-dependent: the two servers run the command a few ms apart.
    "ttl": _tolerant(1),
    "pttl": _tolerant(1500),
    "expiretime": _tolerant(2),
    "pexpiretime": _tolerant(1500),
    "object|idletime": _tolerant(2),
    # Random or per-process values: only the kind of reply must agree.
    "randomkey": _same_kind,
    # Each server's own byte accounting: an integer for a key, nil without.
    "memory|usage": _same_kind,
    "time": _same_kind,
    # Streams: idle and delivery times, and Redis's radix tree node count.
    "xpending": _xpending,
    "xinfo|consumers": lambda a, b: _mask_stream_info(a) == _mask_stream_info(b),
    "xinfo|stream": lambda a, b: _mask_stream_info(a) == _mask_stream_info(b),
}


def command_name(args):
    name = args[0].lower() if isinstance(args[0], str) else args[0].decode().lower()
    if name in ("object", "config", "client", "command", "debug", "memory", "pubsub", "xinfo", "xgroup") \
            and len(args) > 1:
        sub = args[1].lower() if isinstance(args[1], str) else args[1].decode().lower()
        return f"{name}|{sub}"
    return name


# The command a generated script runs (generator.eval_wrap): its first
# redis.call or redis.pcall, with the subcommand when it is a literal.
_SCRIPT_CALL = re.compile(r"redis\.p?call\('([^']+)'(?:, '([^']+)')?")


def script_inner(args):
    """For EVAL of a one-command script, that command's name words (so the
    reply is compared as that command's would be); else None."""
    if command_name(args) not in ("eval", "eval_ro") or len(args) < 2:
        return None
    text = args[1] if isinstance(args[1], str) else args[1].decode(errors="replace")
    m = _SCRIPT_CALL.search(text)
    if not m:
        return None
    return [m.group(1)] + ([m.group(2)] if m.group(2) else [])


def comparer(args):
    """How the replies to `args` are compared: a function, or None for exact."""
    inner = script_inner(args)
    name = command_name(inner) if inner else command_name(args)
    if name.startswith("geosearch") or name.startswith("georadius"):
        return _geo_search(args)
    return NORMALISE.get(name)


class Mismatch(AssertionError):
    pass


class Differ:
    """Holds a connection to each server and compares their replies."""

    def __init__(self, redis, larder):
        self.servers = (redis, larder)
        self.redis = redis.conn()
        self.larder = larder.conn()
        # Further named connections of a case file ("[sub] SUBSCRIBE ch").
        self.others = {}
        self.count = 0
        self.history = []
        # Between MULTI and EXEC: the commands Redis answered QUEUED, so that
        # EXEC's array is compared element by element as each command's
        # own reply would be (TTL inside EXEC is as clock-dependent as outside).
        self.queued = None

    def close(self):
        self.redis.close()
        self.larder.close()
        for a, b in self.others.values():
            a.close()
            b.close()
        self.others = {}

    def pair(self, name):
        """The named connection to each server, opened at its first use."""
        if name not in self.others:
            self.others[name] = (self.servers[0].conn(), self.servers[1].conn())
        return self.others[name]

    def compare(self, args, a, b):
        self.count += 1
        self.history.append(args)
        if len(self.history) > 30:
            self.history.pop(0)
        name = command_name(args)
        if name == "exec" and self.queued is not None:
            queued, self.queued = self.queued, None
            same = self.same_exec(queued, a, b)
        else:
            cmp = comparer(args)
            same = cmp(a, b) if cmp else a == b
            if name == "multi" and a == "OK":
                self.queued = []
            elif name == "discard":
                self.queued = None
            elif self.queued is not None and a == "QUEUED":
                self.queued.append(args)
        if not same:
            recent = "\n".join("  " + " ".join(map(str, h)) for h in self.history[-30:])
            raise Mismatch(f"reply differs for {args!r}\n  redis:  {a!r}\n  larder: {b!r}\nlast commands:\n{recent}")

    @staticmethod
    def same_exec(queued, a, b):
        if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == len(queued)):
            return a == b  # nil (WATCH), EXECABORT, or a count that differs
        for args, x, y in zip(queued, a, b):
            cmp = comparer(args)
            if not (cmp(x, y) if cmp else x == y):
                return False
        return True

    @staticmethod
    def complete_scan(conn, args, reply):
        """For a collection SCAN with a non-zero cursor in its reply, follows
        the cursor to the end and returns the reply with every element."""
        name = command_name(args)
        if name not in ("hscan", "sscan", "zscan") or not isinstance(reply, list) or reply[0] == b"0":
            return reply
        items = list(reply[1])
        cursor = reply[0]
        for _ in range(100000):
            nxt = conn.cmd(args[0], args[1], cursor, *args[3:])
            if not isinstance(nxt, list):
                return nxt
            items += nxt[1]
            cursor = nxt[0]
            if cursor == b"0":
                break
        return [b"0", items]

    def run(self, *args):
        a = self.complete_scan(self.redis, args, self.redis.cmd(*args))
        b = self.complete_scan(self.larder, args, self.larder.cmd(*args))
        self.compare(args, a, b)
        return a

    def run_batch(self, commands):
        """Pipelines a batch to each server, then compares reply by reply. A
        collection scan ends the pipeline before it and runs alone, so that
        following its cursor sees the state its first page saw."""
        for i, args in enumerate(commands):
            if command_name(args) in ("hscan", "sscan", "zscan"):
                if i:
                    self.run_batch(commands[:i])
                self.run(*args)
                return self.run_batch(commands[i + 1:]) if i + 1 < len(commands) else None
        if not commands:
            return None
        ra = self.redis.pipeline(commands)
        rb = self.larder.pipeline(commands)
        for args, a, b in zip(commands, ra, rb):
            # Scans are read-only: completing one after the batch sees the same state.
            a = self.complete_scan(self.redis, args, a)
            b = self.complete_scan(self.larder, args, b)
            self.compare(args, a, b)

    def run_on(self, conns, args):
        """One line on a named connection: a command (its first reply), or
        `!read N` (the next N frames: the rest of a SUBSCRIBE's replies,
        messages, RESP3 pushes), `!readany N` (the same in any order),
        `!quiet` (nothing more arrives within 0.2 s on either) or
        `!send CMD ...` (sent, no reply read: CLIENT REPLY OFF)."""
        a_conn, b_conn = conns
        verb = str(args[0]).lower()
        if verb in ("!read", "!readany"):
            n = int(args[1]) if len(args) > 1 else 1
            a = [a_conn.read() for _ in range(n)]
            b = [b_conn.read() for _ in range(n)]
            if verb == "!readany":
                a, b = sorted(map(repr, a)), sorted(map(repr, b))
            self.compare(args, a, b)
        elif verb == "!quiet":
            self.compare(args, pending(a_conn), pending(b_conn))
        elif verb == "!send":  # a command with no reply (CLIENT REPLY OFF)
            a_conn.send_raw(encode(*args[1:]))
            b_conn.send_raw(encode(*args[1:]))
        else:
            a_conn.send_raw(encode(*args))
            b_conn.send_raw(encode(*args))
            self.compare(args, a_conn.read(), b_conn.read())

    def run_script(self, text, name="script"):
        """Runs a case file: one command per line in redis-cli quoting; lines
        starting with '#' are comments. A line that starts with `[name]`
        runs on that named connection (see run_on)."""
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            conn = None
            if line.startswith("["):
                end = line.index("]")
                conn, line = line[1:end], line[end + 1:].strip()
            args = split_args(line)
            try:
                if conn is None:
                    self.run(*args)
                else:
                    self.run_on(self.pair(conn), args)
            except Mismatch as e:
                raise Mismatch(f"{name}:{lineno}: {e}") from None
            except (OSError, ConnectionError) as e:  # a reply that never came
                raise Mismatch(f"{name}:{lineno}: {line}: {e!r}") from None


def pending(conn):
    """A frame that arrives within 0.2 s, or None."""
    if conn.buf:
        return conn.read()
    conn.sock.settimeout(0.2)
    try:
        conn._fill()
    except (TimeoutError, socket.timeout):
        return None
    finally:
        conn.sock.settimeout(30)
    return conn.read()


_ESCAPES = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b", "a": b"\a"}


def split_args(line):
    """Splits a line as redis-cli does: double quotes take \\xHH and \\n-style
    escapes, single quotes only \\'. Arguments that are not ASCII come back as bytes."""
    if "\\" not in line:
        return shlex.split(line)
    args, i, n = [], 0, len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        cur, quote = bytearray(), None
        while i < n:
            c = line[i]
            if quote == '"':
                if c == "\\" and i + 1 < n:
                    e = line[i + 1]
                    if e == "x" and i + 3 < n:
                        cur += bytes([int(line[i + 2:i + 4], 16)])
                        i += 4
                        continue
                    cur += _ESCAPES.get(e, e.encode())
                    i += 2
                    continue
                if c == '"':
                    quote = None
                    i += 1
                    continue
            elif quote == "'":
                if c == "\\" and i + 1 < n and line[i + 1] == "'":
                    cur += b"'"
                    i += 2
                    continue
                if c == "'":
                    quote = None
                    i += 1
                    continue
            elif c in "\"'":
                quote = c
                i += 1
                continue
            elif c.isspace():
                break
            cur += c.encode()
            i += 1
        args.append(cur.decode() if cur.isascii() else bytes(cur))
    return args


def start_pair(threads=2):
    """With LARDER_TEST_TARGET=redis both are redis-servers: a check of the
    cases and the generator themselves (they must agree with Redis itself)."""
    redis = start_redis(COMMON_ARGS)
    if os.environ.get("LARDER_TEST_TARGET") == "redis":
        return redis, start_redis(COMMON_ARGS)
    larder = start_larder(COMMON_ARGS, threads=threads)
    return redis, larder
