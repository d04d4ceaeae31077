"""Seeded random command generator for the differential harness.

Each command family registers a list of (weight, function(rng, g) -> args).
Keys come from a small pool (so commands collide and exercise existing keys,
wrong types and overwrites) that mixes plain names with {hash tags}, so at
--threads 2 multi-key commands cross shards. Later families (hashes, lists,
...) add their own generators to FAMILIES.
"""
import random
import re

VALUES = [b"", b"0", b"1", b"-1", b"42", b"9999", b"10000", b"123456789", b"9223372036854775807",
          b"-9223372036854775808", b"3.14", b"-0.5", b"1e3", b"abc", b"hello world", b"x" * 45,
          b"y" * 300, b" 12", b"12 ", b"007", b"inf", b"\x00\xff binary"]


class Gen:
    def __init__(self, seed, nkeys=60):
        self.rng = random.Random(seed)
        base = [f"k{i}" for i in range(nkeys)]
        tagged = [f"{{t{i % 5}}}:{i}" for i in range(nkeys // 3)]
        self.keys = base + tagged

    def key(self):
        return self.rng.choice(self.keys)

    def value(self):
        r = self.rng.random()
        if r < 0.7:
            return self.rng.choice(VALUES)
        return str(self.rng.randint(-1000, 1000)).encode()

    def int_arg(self):
        return str(self.rng.choice([0, 1, -1, 5, 100, -100, 2**31, 2**63 - 1, -2**63,
                                    self.rng.randint(-50, 50)])).encode() \
            if self.rng.random() < 0.9 else self.rng.choice([b"abc", b"1.5", b"", b" 1"])

    def float_arg(self):
        return self.rng.choice([b"1", b"0.1", b"-2.5", b"1e2", b"3.0e3", b"abc", b"inf", b"-inf",
                                b"1.7976931348623157e308", b"0", b"5"])

    def seconds(self):
        return str(self.rng.choice([100, 1000, 50000, 10**6])).encode()

    def millis(self):
        return str(self.rng.choice([100000, 1000000, 5 * 10**7])).encode()

    def future_at(self):
        return str(4102444800 + self.rng.randint(0, 10**6)).encode()  # after 2100-01-01

    def past_at(self):
        return str(self.rng.randint(1, 1000)).encode()


def _set_opts(rng, g):
    opts = []
    r = rng.random()
    if r < 0.15:
        opts.append(rng.choice([b"NX", b"XX"]))
    if rng.random() < 0.2:
        opts.append(b"GET")
    e = rng.random()
    if e < 0.15:
        opts += [b"EX", g.seconds()]
    elif e < 0.25:
        opts += [b"PX", g.millis()]
    elif e < 0.3:
        opts += [b"EXAT", g.future_at()]
    elif e < 0.33:
        opts += [b"PXAT", g.future_at() + b"000"]
    elif e < 0.38:
        opts.append(b"KEEPTTL")
    elif e < 0.40:
        opts += [rng.choice([b"EX", b"PX"]), rng.choice([b"0", b"-1", b"abc"])]
    rng.shuffle(opts) if rng.random() < 0.1 else None
    return opts


def _multi(g, n=None):
    return [g.key() for _ in range(n or g.rng.randint(1, 6))]


STRING = [
    (10, lambda r, g: [b"GET", g.key()]),
    (10, lambda r, g: [b"SET", g.key(), g.value()] + _set_opts(r, g)),
    (2, lambda r, g: [b"SETNX", g.key(), g.value()]),
    (2, lambda r, g: [b"SETEX", g.key(), r.choice([g.seconds(), b"0", b"abc"]), g.value()]),
    (1, lambda r, g: [b"PSETEX", g.key(), g.millis(), g.value()]),
    (2, lambda r, g: [b"GETSET", g.key(), g.value()]),
    (2, lambda r, g: [b"GETDEL", g.key()]),
    (2, lambda r, g: [b"GETEX", g.key()] + r.choice([[], [b"PERSIST"], [b"EX", g.seconds()], [b"PX", g.millis()],
                                                    [b"EXAT", g.past_at()], [b"EX", b"0"], [b"FOO"]])),
    (4, lambda r, g: [b"MGET"] + _multi(g)),
    (3, lambda r, g: [b"MSET"] + [x for k in _multi(g) for x in (k, g.value())]),
    (1, lambda r, g: [b"MSETNX"] + [x for k in _multi(g, 2) for x in (k, g.value())]),
    (5, lambda r, g: [r.choice([b"INCR", b"DECR"]), g.key()]),
    (4, lambda r, g: [r.choice([b"INCRBY", b"DECRBY"]), g.key(), g.int_arg()]),
    (3, lambda r, g: [b"INCRBYFLOAT", g.key(), g.float_arg()]),
    (3, lambda r, g: [b"APPEND", g.key(), g.value()]),
    (2, lambda r, g: [b"STRLEN", g.key()]),
    (3, lambda r, g: [b"GETRANGE", g.key(), g.int_arg(), g.int_arg()]),
    (2, lambda r, g: [b"SETRANGE", g.key(), str(r.choice([0, 1, 5, 50, -1])).encode(), g.value()]),
    (1, lambda r, g: [b"LCS", g.key(), g.key()] + r.choice([[], [b"LEN"], [b"IDX"], [b"IDX", b"WITHMATCHLEN"],
                                                           [b"IDX", b"MINMATCHLEN", b"2"]])),
    (1, lambda r, g: [b"OBJECT", b"ENCODING", g.key()]),
]

KEYS = [
    (0.5, lambda r, g: [b"MEMORY", b"USAGE", g.key()]),
    # The harness runs with noeviction: FREQ is an error (or nil). IDLETIME
    # is left out: Redis reports a shared object's idle time for keys holding
    # small integers (docs/compatibility.md).
    (0.3, lambda r, g: [b"OBJECT", b"FREQ", g.key()]),
    (4, lambda r, g: [b"DEL"] + _multi(g)),
    (2, lambda r, g: [b"UNLINK"] + _multi(g)),
    (4, lambda r, g: [b"EXISTS"] + _multi(g)),
    (2, lambda r, g: [b"TOUCH"] + _multi(g)),
    (3, lambda r, g: [b"TYPE", g.key()]),
    (2, lambda r, g: [b"RENAME", g.key(), g.key()]),
    (2, lambda r, g: [b"RENAMENX", g.key(), g.key()]),
    (2, lambda r, g: [b"COPY", g.key(), g.key()] + r.choice([[], [b"REPLACE"], [b"DB", b"1"], [b"DB", b"1", b"REPLACE"]])),
    (1, lambda r, g: [b"MOVE", g.key(), r.choice([b"0", b"1", b"2"])]),
    (1, lambda r, g: [b"SELECT", r.choice([b"0", b"0", b"0", b"1"])]),
    (1, lambda r, g: [b"DBSIZE"]),
    (1, lambda r, g: [b"KEYS", r.choice([b"k1*", b"{t1}*", b"*", b"k?", b"k[1-3]"])]),
    (0.05, lambda r, g: [b"SWAPDB", b"0", b"1"]),
    (0.02, lambda r, g: [b"FLUSHDB"]),
    (1, lambda r, g: [b"OBJECT", b"REFCOUNT", g.key()]),
]

EXPIRY = [
    # TTLs stay long (>= 100 s) so no key expires during a run, and GT/LT only
    # compare absolute times: the two servers run a command a few ms apart, so
    # relative times are not deterministic between them.
    (3, lambda r, g: r.choice([[b"EXPIRE", g.key(), g.seconds()], [b"PEXPIRE", g.key(), g.millis()]])
     + r.choice([[], [], [b"NX"], [b"XX"], [b"NX", b"XX"], [b"GT", b"LT"], [b"FOO"]])),
    (2, lambda r, g: r.choice([[b"EXPIREAT", g.key(), r.choice([g.future_at(), g.past_at()])],
                               [b"PEXPIREAT", g.key(), r.choice([g.future_at() + b"000", g.past_at()])]])
     + r.choice([[], [b"NX"], [b"XX"], [b"GT"], [b"LT"]])),
    (1, lambda r, g: [b"EXPIRE", g.key(), r.choice([b"0", b"-5", b"abc"])]),
    (4, lambda r, g: [r.choice([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), g.key()]),
    (2, lambda r, g: [b"PERSIST", g.key()]),
]

FIELDS = [b"f1", b"f2", b"f3", b"name", b"age", b"", b"x" * 70, b"n"]


def _field(g):
    return g.rng.choice(FIELDS)


HASH = [
    (8, lambda r, g: [b"HSET", g.key()] + [x for _ in range(r.randint(1, 4)) for x in (_field(g), g.value())]),
    (1, lambda r, g: [b"HMSET", g.key(), _field(g), g.value()]),
    (2, lambda r, g: [b"HSETNX", g.key(), _field(g), g.value()]),
    (6, lambda r, g: [b"HGET", g.key(), _field(g)]),
    (2, lambda r, g: [b"HMGET", g.key()] + [_field(g) for _ in range(r.randint(1, 4))]),
    (4, lambda r, g: [b"HDEL", g.key()] + [_field(g) for _ in range(r.randint(1, 3))]),
    (2, lambda r, g: [b"HLEN", g.key()]),
    (1, lambda r, g: [b"HSTRLEN", g.key(), _field(g)]),
    (2, lambda r, g: [b"HEXISTS", g.key(), _field(g)]),
    (2, lambda r, g: [b"HGETALL", g.key()]),
    (1, lambda r, g: [r.choice([b"HKEYS", b"HVALS"]), g.key()]),
    (3, lambda r, g: [b"HINCRBY", g.key(), _field(g), g.int_arg()]),
    (2, lambda r, g: [b"HINCRBYFLOAT", g.key(), _field(g), g.float_arg()]),
    (1, lambda r, g: [b"HRANDFIELD", g.key()] + r.choice([[], [b"2"], [b"-3"], [b"0"], [b"5", b"WITHVALUES"],
                                                         [b"x"]])),
    (1, lambda r, g: [b"HSCAN", g.key(), b"0"] + r.choice([[], [b"MATCH", b"f*"], [b"COUNT", b"2"]])),
    (1, lambda r, g: [b"OBJECT", b"ENCODING", g.key()]),
    (1, lambda r, g: [b"TYPE", g.key()]),
]

MEMBERS = [b"1", b"2", b"3", b"10", b"-5", b"a", b"b", b"c", b"", b"9223372036854775807", b"1.5", b"007"]


def _member(g):
    return g.rng.choice(MEMBERS) if g.rng.random() < 0.9 else str(g.rng.randint(0, 600)).encode()


SET = [
    (8, lambda r, g: [b"SADD", g.key()] + [_member(g) for _ in range(r.randint(1, 5))]),
    (4, lambda r, g: [b"SREM", g.key()] + [_member(g) for _ in range(r.randint(1, 3))]),
    (2, lambda r, g: [b"SCARD", g.key()]),
    (3, lambda r, g: [b"SISMEMBER", g.key(), _member(g)]),
    (1, lambda r, g: [b"SMISMEMBER", g.key(), _member(g), _member(g)]),
    (2, lambda r, g: [b"SMEMBERS", g.key()]),
    (1, lambda r, g: [b"SRANDMEMBER", g.key()] + r.choice([[], [b"3"], [b"-2"], [b"0"], [b"x"]])),
    # SPOP removes random members; only "all of them" keeps both servers equal.
    (1, lambda r, g: [b"SPOP", g.key(), b"1000"]),
    (2, lambda r, g: [b"SMOVE", g.key(), g.key(), _member(g)]),
    (2, lambda r, g: [r.choice([b"SINTER", b"SUNION", b"SDIFF"])] + _multi(g, r.randint(1, 3))),
    (2, lambda r, g: [r.choice([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]), g.key()] + _multi(g, r.randint(1, 3))),
    (1, lambda r, g: [b"SINTERCARD", b"2", g.key(), g.key()] + r.choice([[], [b"LIMIT", b"1"]])),
    (1, lambda r, g: [b"SSCAN", g.key(), b"0"] + r.choice([[], [b"MATCH", b"1*"]])),
    (1, lambda r, g: [b"OBJECT", b"ENCODING", g.key()]),
]

def _idx(g):
    return str(g.rng.choice([0, 1, 2, -1, -2, 5, -10, 100])).encode()


LIST = [
    (8, lambda r, g: [r.choice([b"LPUSH", b"RPUSH"]), g.key()] + [g.value() for _ in range(r.randint(1, 4))]),
    (2, lambda r, g: [r.choice([b"LPUSHX", b"RPUSHX"]), g.key(), g.value()]),
    (4, lambda r, g: [r.choice([b"LPOP", b"RPOP"]), g.key()] + r.choice([[], [], [b"2"], [b"0"], [b"x"]])),
    (2, lambda r, g: [b"LLEN", g.key()]),
    (4, lambda r, g: [b"LRANGE", g.key(), _idx(g), _idx(g)]),
    (2, lambda r, g: [b"LINDEX", g.key(), _idx(g)]),
    (2, lambda r, g: [b"LSET", g.key(), _idx(g), g.value()]),
    (2, lambda r, g: [b"LINSERT", g.key(), r.choice([b"BEFORE", b"AFTER"]), g.value(), g.value()]),
    (2, lambda r, g: [b"LREM", g.key(), _idx(g), g.value()]),
    (1, lambda r, g: [b"LTRIM", g.key(), _idx(g), _idx(g)]),
    (2, lambda r, g: [b"LPOS", g.key(), g.value()] + r.choice([[], [b"RANK", b"-1"], [b"COUNT", b"0"],
                                                               [b"RANK", b"2", b"MAXLEN", b"5"]])),
    (2, lambda r, g: [b"LMOVE", g.key(), g.key(), r.choice([b"LEFT", b"RIGHT"]), r.choice([b"LEFT", b"RIGHT"])]),
    (1, lambda r, g: [b"RPOPLPUSH", g.key(), g.key()]),
    (1, lambda r, g: [b"LMPOP", b"2", g.key(), g.key(), r.choice([b"LEFT", b"RIGHT"])]
     + r.choice([[], [b"COUNT", b"3"]])),
    # Blocking forms with a timeout so short that an empty list answers nil at once.
    (0.2, lambda r, g: [r.choice([b"BLPOP", b"BRPOP"]), g.key(), g.key(), b"0.001"]),
    (0.1, lambda r, g: [b"BLMOVE", g.key(), g.key(), b"LEFT", b"RIGHT", b"0.001"]),
]

def _sid(g, explicit_only=False):
    """A stream ID: mostly increasing explicit IDs (so XADD succeeds), some
    small or special ones; "ms-*" only where XADD takes it. Never "*" (the
    clock)."""
    r = g.rng.random()
    g.stream_ms = getattr(g, "stream_ms", 0) + g.rng.randint(0, 2)
    if r < 0.6:
        return f"{g.stream_ms}-{g.rng.randint(0, 2)}".encode()
    if r < 0.75 and not explicit_only:
        return f"{g.stream_ms}-*".encode()
    return g.rng.choice([b"0-0", b"0-1", b"1", b"5-0", b"abc", b"-1", b"18446744073709551615-18446744073709551615"])


def _sbound(g):
    r = g.rng.random()
    if r < 0.3:
        return g.rng.choice([b"-", b"+", b"(0-0", b"(-"])
    base = str(g.rng.randint(0, getattr(g, "stream_ms", 0) + 3)).encode()
    if r < 0.6:
        return base
    return (b"(" if r < 0.8 else b"") + base + b"-" + str(g.rng.randint(0, 2)).encode()


def _sfields(g):
    names = [b"f", b"g", b"name", b"x"]
    n = g.rng.choice([1, 1, 2, 3])
    out = []
    for i in range(n):
        out += [names[i] if g.rng.random() < 0.8 else g.rng.choice(names), g.value()]
    return out


def _strim(g):
    """MAXLEN/MINID, exact or "~" (whole nodes: Larder's blocks end where
    Redis's listpack nodes end), now and then with LIMIT."""
    how = g.rng.choice([[], [b"="], [b"~"]])
    lim = [b"LIMIT", g.rng.choice([b"1", b"5", b"0"])] if how == [b"~"] and g.rng.random() < 0.3 else []
    if g.rng.random() < 0.5:
        return [b"MAXLEN"] + how + [g.rng.choice([b"0", b"1", b"3", b"10", b"-1", b"x"])] + lim
    return [b"MINID"] + how + [_sid(g, True)] + lim


def _sgroup(g):
    return g.rng.choice([b"g1", b"g1", b"g2", b"nog"])


def _sconsumer(g):
    return g.rng.choice([b"alice", b"bob", b"carol"])


STREAM = [
    (10, lambda r, g: [b"XADD", g.key()] + r.choice([[], [], [b"NOMKSTREAM"]]) + r.choice([[], [], _strim(g)])
     + [_sid(g)] + _sfields(g)),
    (3, lambda r, g: [b"XRANGE", g.key(), _sbound(g), _sbound(g)] + r.choice([[], [b"COUNT", b"2"], [b"COUNT", b"0"]])),
    (2, lambda r, g: [b"XREVRANGE", g.key(), _sbound(g), _sbound(g)] + r.choice([[], [b"COUNT", b"1"]])),
    (2, lambda r, g: [b"XLEN", g.key()]),
    (2, lambda r, g: [b"XDEL", g.key()] + [_sid(g, True) for _ in range(r.randint(1, 3))]),
    (1, lambda r, g: [b"XTRIM", g.key()] + _strim(g)),
    (2, lambda r, g: [b"XREAD"] + r.choice([[], [b"COUNT", b"2"]]) + [b"STREAMS", g.key(), g.key(),
                                                                     _sid(g, True), r.choice([b"$", b"0"])]),
    (3, lambda r, g: [b"XGROUP", b"CREATE", g.key(), _sgroup(g), r.choice([b"$", b"0", _sid(g, True)])]
     + r.choice([[], [b"MKSTREAM"], [b"ENTRIESREAD", b"1"]])),
    (1, lambda r, g: [b"XGROUP", b"SETID", g.key(), _sgroup(g), r.choice([b"$", b"0", _sid(g, True)])]),
    (0.5, lambda r, g: [b"XGROUP", b"DESTROY", g.key(), _sgroup(g)]),
    (1, lambda r, g: [b"XGROUP", r.choice([b"CREATECONSUMER", b"DELCONSUMER"]), g.key(), _sgroup(g), _sconsumer(g)]),
    (5, lambda r, g: [b"XREADGROUP", b"GROUP", _sgroup(g), _sconsumer(g)] + r.choice([[], [b"COUNT", b"2"]])
     + r.choice([[], [], [b"NOACK"]]) + [b"STREAMS", g.key(), r.choice([b">", b">", b"0", _sid(g, True)])]),
    (3, lambda r, g: [b"XACK", g.key(), _sgroup(g)] + [_sid(g, True) for _ in range(r.randint(1, 3))]),
    (2, lambda r, g: [b"XPENDING", g.key(), _sgroup(g)]
     + r.choice([[], [b"-", b"+", b"10"], [_sbound(g), _sbound(g), b"5", _sconsumer(g)]])),
    (2, lambda r, g: [b"XCLAIM", g.key(), _sgroup(g), _sconsumer(g), b"0", _sid(g, True)]
     + r.choice([[], [b"JUSTID"], [b"FORCE"], [b"RETRYCOUNT", b"3"], [b"LASTID", _sid(g, True)]])),
    (2, lambda r, g: [b"XAUTOCLAIM", g.key(), _sgroup(g), _sconsumer(g), b"0", _sbound(g)]
     + r.choice([[], [b"COUNT", b"2"], [b"JUSTID"]])),
    (1, lambda r, g: [b"XINFO", b"GROUPS", g.key()]),
    (0.5, lambda r, g: [b"XINFO", b"STREAM", g.key()]),
    (0.5, lambda r, g: [b"XSETID", g.key(), _sid(g, True)]),
]

def _score(g):
    return g.rng.choice([b"0", b"1", b"-1", b"1.5", b"2", b"10", b"-inf", b"+inf", b"3e2", b"0.1", b"x"]) \
        if g.rng.random() < 0.8 else str(g.rng.randint(-20, 20)).encode()


def _zbound(g):
    return g.rng.choice([b"-inf", b"+inf", b"0", b"(1", b"2", b"(10", b"1.5", b"x"])


def _lexbound(g):
    return g.rng.choice([b"-", b"+", b"[a", b"(b", b"[c", b"(", b"x"])


ZSET = [
    (8, lambda r, g: [b"ZADD", g.key()] + r.choice([[], [], [b"NX"], [b"XX"], [b"GT"], [b"LT", b"CH"], [b"CH"]])
     + [x for _ in range(r.randint(1, 3)) for x in (_score(g), _member(g))]),
    (1, lambda r, g: [b"ZADD", g.key(), b"INCR", _score(g), _member(g)]),
    (3, lambda r, g: [b"ZINCRBY", g.key(), _score(g), _member(g)]),
    (3, lambda r, g: [b"ZREM", g.key(), _member(g), _member(g)]),
    (2, lambda r, g: [b"ZCARD", g.key()]),
    (3, lambda r, g: [b"ZSCORE", g.key(), _member(g)]),
    (1, lambda r, g: [b"ZMSCORE", g.key(), _member(g), _member(g)]),
    (2, lambda r, g: [r.choice([b"ZRANK", b"ZREVRANK"]), g.key(), _member(g)]),
    (2, lambda r, g: [b"ZCOUNT", g.key(), _zbound(g), _zbound(g)]),
    # Lex ranges are only defined when all scores are equal; the scripted
    # cases cover them, the random keys have mixed scores.
    (4, lambda r, g: [b"ZRANGE", g.key(), _idx(g), _idx(g)] + r.choice([[], [b"WITHSCORES"], [b"REV"]])),
    (3, lambda r, g: [b"ZRANGE", g.key(), _zbound(g), _zbound(g), b"BYSCORE"]
     + r.choice([[], [b"REV"], [b"WITHSCORES"], [b"LIMIT", b"1", b"2"], [b"REV", b"LIMIT", b"0", b"-1"]])),
    (2, lambda r, g: [r.choice([b"ZRANGEBYSCORE", b"ZREVRANGEBYSCORE"]), g.key(), _zbound(g), _zbound(g)]
     + r.choice([[], [b"WITHSCORES"], [b"LIMIT", b"1", b"1"]])),
    (1, lambda r, g: [b"ZREVRANGE", g.key(), _idx(g), _idx(g), b"WITHSCORES"]),
    (2, lambda r, g: [r.choice([b"ZREMRANGEBYRANK", b"ZREMRANGEBYSCORE"]), g.key()]
     + r.choice([[_idx(g), _idx(g)], [_zbound(g), _zbound(g)]])),
    (2, lambda r, g: [r.choice([b"ZPOPMIN", b"ZPOPMAX"]), g.key()] + r.choice([[], [b"2"], [b"0"]])),
    (1, lambda r, g: [b"ZMPOP", b"2", g.key(), g.key(), r.choice([b"MIN", b"MAX"])] + r.choice([[], [b"COUNT", b"2"]])),
    (1, lambda r, g: [b"ZRANDMEMBER", g.key()] + r.choice([[], [b"2"], [b"-2", b"WITHSCORES"]])),
    (2, lambda r, g: [r.choice([b"ZUNION", b"ZINTER", b"ZDIFF"]), b"2", g.key(), g.key()]
     + r.choice([[], [b"WITHSCORES"], [b"AGGREGATE", b"MAX", b"WITHSCORES"]])),
    (2, lambda r, g: [r.choice([b"ZUNIONSTORE", b"ZINTERSTORE", b"ZDIFFSTORE"]), g.key(), b"2", g.key(), g.key()]),
    (1, lambda r, g: [b"ZINTERCARD", b"2", g.key(), g.key()]),
    (1, lambda r, g: [b"ZRANGESTORE", g.key(), g.key(), b"0", b"-1"]),
    (1, lambda r, g: [b"ZSCAN", g.key(), b"0"]),
    (1, lambda r, g: [b"OBJECT", b"ENCODING", g.key()]),
    (0.2, lambda r, g: [r.choice([b"BZPOPMIN", b"BZPOPMAX"]), g.key(), b"0.001"]),
]

def _bitoff(g):
    return str(g.rng.choice([0, 1, 7, 8, 15, 63, 64, 100, 1000, -1])).encode()


def _bftype(g):
    return g.rng.choice([b"i8", b"u8", b"i5", b"u4", b"i16", b"u1", b"i64", b"u63", b"u64", b"x3"])


BITMAP = [
    (6, lambda r, g: [b"SETBIT", g.key(), _bitoff(g), r.choice([b"0", b"1", b"1", b"2"])]),
    (4, lambda r, g: [b"GETBIT", g.key(), _bitoff(g)]),
    (3, lambda r, g: [b"BITCOUNT", g.key()] + r.choice([[], [_idx(g), _idx(g)], [_idx(g), _idx(g), b"BIT"],
                                                        [_idx(g), _idx(g), b"BYTE"]])),
    (3, lambda r, g: [b"BITPOS", g.key(), r.choice([b"0", b"1"])] + r.choice([[], [_idx(g)], [_idx(g), _idx(g)],
                                                                             [_idx(g), _idx(g), b"BIT"]])),
    (2, lambda r, g: [b"BITOP", r.choice([b"AND", b"OR", b"XOR"]), g.key(), g.key(), g.key()]),
    (1, lambda r, g: [b"BITOP", b"NOT", g.key(), g.key()]),
    (3, lambda r, g: [b"BITFIELD", g.key()] + r.choice([[], [b"OVERFLOW", r.choice([b"SAT", b"FAIL", b"WRAP"])]])
     + r.choice([[b"GET", _bftype(g), _bitoff(g)], [b"SET", _bftype(g), _bitoff(g), g.int_arg()],
                 [b"INCRBY", _bftype(g), r.choice([b"#1", b"0", b"9"]), g.int_arg()]])),
    (1, lambda r, g: [b"BITFIELD_RO", g.key(), b"GET", _bftype(g), _bitoff(g)]),
]

def _coord(g, limit):
    r = g.rng.random()
    if r < 0.05:
        return g.rng.choice([b"abc", str(limit * 1.5).encode(), str(limit).encode(), str(-limit).encode()])
    return ("%.6f" % g.rng.uniform(-limit, limit)).encode()


def _geokey(g):
    """Geo commands use keys of their own: their scores must be valid geohashes
    (a plain sorted set's scores decode to arbitrary places)."""
    return b"geo:%d" % g.rng.randint(0, 5)


GEO = [
    (6, lambda r, g: [b"GEOADD", _geokey(g)] + r.choice([[], [], [b"CH"], [b"NX"], [b"XX"]])
     + [x for _ in range(r.randint(1, 3)) for x in (_coord(g, 170), _coord(g, 70), _member(g))]),
    (3, lambda r, g: [b"GEOPOS", _geokey(g), _member(g), _member(g)]),
    (3, lambda r, g: [b"GEODIST", _geokey(g), _member(g), _member(g)] + r.choice([[], [b"km"], [b"mi"], [b"ft"], [b"x"]])),
    (2, lambda r, g: [b"GEOHASH", _geokey(g), _member(g), _member(g)]),
    (1, lambda r, g: [b"ZREM", _geokey(g), _member(g)]),
    (2, lambda r, g: [b"GEOSEARCH", _geokey(g)]
     + r.choice([[b"FROMMEMBER", _member(g)], [b"FROMLONLAT", _coord(g, 170), _coord(g, 70)],
                 [b"FROMLONLAT", _coord(g, 180), _coord(g, 85)]])
     # Larder walks Redis's geohash cells, so every shape finds what Redis
     # finds, in the same order: large shapes, near the poles and the
     # antimeridian included (where that walk misses some members inside).
     + r.choice([[b"BYRADIUS", r.choice([b"50", b"200", b"500", b"3000", b"12000"]), b"km"],
                 [b"BYBOX", r.choice([b"100", b"400", b"5000"]), r.choice([b"100", b"400", b"9000"]), b"km"]])
     + r.choice([[], [], [b"ASC"], [b"DESC", b"WITHDIST"], [b"COUNT", b"2", b"WITHCOORD"], [b"WITHHASH"],
                 [b"COUNT", b"2", b"ANY"], [b"COUNT", b"1", b"ANY", b"WITHDIST"]])),
    (1, lambda r, g: [b"GEORADIUS", _geokey(g), _coord(g, 170), _coord(g, 70), b"300", b"km", b"ASC", b"WITHDIST"]),
    (1, lambda r, g: [b"GEOSEARCHSTORE", _geokey(g), _geokey(g), b"FROMLONLAT", b"0", b"0", b"BYRADIUS", b"500", b"km"]
     + r.choice([[], [b"STOREDIST"]])),
]

def _hllkey(g):
    """Mostly keys of their own (so they grow to the dense form), sometimes a
    shared key, which may hold another type or a plain string."""
    return b"hll:%d" % g.rng.randint(0, 5) if g.rng.random() < 0.85 else g.key().encode()


def _elements(g, most):
    return [b"e%d" % g.rng.randint(0, 200000) for _ in range(g.rng.randint(0, most))]


HLL = [
    (8, lambda r, g: [b"PFADD", _hllkey(g)] + _elements(g, r.choice([3, 30, 300]))),
    (4, lambda r, g: [b"PFCOUNT", _hllkey(g)]),
    (2, lambda r, g: [b"PFCOUNT", _hllkey(g), _hllkey(g)] + r.choice([[], [_hllkey(g)]])),
    (2, lambda r, g: [b"PFMERGE", _hllkey(g), _hllkey(g)] + r.choice([[], [_hllkey(g)]])),
    (3, lambda r, g: [b"GET", _hllkey(g)]),
    (1, lambda r, g: [b"PFDEBUG", r.choice([b"ENCODING", b"DECODE", b"TODENSE"]), _hllkey(g)]),
    (0.3, lambda r, g: [b"CONFIG", b"SET", b"hll-sparse-max-bytes", r.choice([b"3000", b"3000", b"300", b"1000"])]),
    (0.3, lambda r, g: [b"DEL", _hllkey(g)]),
]

# SORT. Sources whose order both servers share whatever the options: lists
# (sl*), intsets (si*: members in numeric order in both) and sorted sets
# (sz*); any key of the pool is sorted only in ways that give a total order
# (numeric scores tie-break on the element; ALPHA only with STORE, which
# compares bytes), because a hash table set's own order is not shared.
# ALPHA with BY has no LIMIT: Redis then sorts partially (pqsort), and
# equal BY values may come out in another order. Patterns name pool keys
# (k1, k10, {t1}:6...), so they cross shards at --threads 2.
SORT_ELEMENTS = [b"1", b"2", b"3", b"10", b"-5", b"0", b"1.5", b"7", b"12", b"42", b"007", b"6", b"11", b"a",
                 b"b", b"", b"x y"]
SORT_BY = [b"k*", b"k*", b"k*->f1", b"k*->age", b"{t1}:*", b"w*", b"k*->", b"*", b"nosort"]
SORT_GET = [b"#", b"k*", b"k*->f1", b"k*->name", b"{t1}:*", b"nokey", b"w*->x"]


def _sort_limit(g):
    return g.rng.choice([[], [], [b"LIMIT", b"0", b"1"], [b"LIMIT", b"1", b"2"], [b"LIMIT", b"-1", b"3"],
                         [b"LIMIT", b"0", b"0"], [b"LIMIT", b"5", b"10"], [b"LIMIT", b"0", b"-1"],
                         [b"LIMIT", b"2", b"9223372036854775807"], [b"LIMIT", b"x", b"1"], [b"LIMIT", b"1"]])


def _sort_gets(g):
    return [x for _ in range(g.rng.choice([0, 0, 1, 2])) for x in (b"GET", g.rng.choice(SORT_GET))]


def _sort_dst(g):
    return g.rng.choice([g.key(), f"sl{g.rng.randint(0, 4)}".encode()])


def _sort_any(r, g):
    # Any pool key: numeric, or ALPHA with STORE; a constant BY only with STORE.
    store = r.random() < 0.4
    args = [r.choice([b"SORT", b"SORT_RO"]) if not store else b"SORT", g.key()]
    if r.random() < 0.5:
        args += [b"BY", r.choice(SORT_BY if store else SORT_BY[:-1])]
    if store and r.random() < 0.3 and b"BY" not in args:
        args.append(b"ALPHA")
    args += _sort_limit(g) + _sort_gets(g) + r.choice([[], [b"DESC"], [b"ASC"]])
    if store:
        args += [b"STORE", _sort_dst(g)]
    return args


def _sort_ordered(r, g):
    kind = r.choice(["l", "l", "i", "z"])
    src = f"s{kind}{r.randint(0, 4)}".encode()
    args = [r.choice([b"SORT", b"SORT_RO"]), src]
    by = r.random() < 0.5
    alpha = r.random() < 0.4
    if by:
        args += [b"BY", r.choice(SORT_BY)]
    if alpha and not (by and kind == "z"):  # a sorted set's equal BY values: dict order in Redis
        args.append(b"ALPHA")
    if not (by and b"ALPHA" in args):
        args += _sort_limit(g)
    args += _sort_gets(g) + r.choice([[], [b"DESC"], [b"ASC"]])
    if args[0] == b"SORT" and r.random() < 0.3:
        args += [b"STORE", _sort_dst(g)]
    return args


SORT = [
    (4, lambda r, g: [b"RPUSH", f"sl{r.randint(0, 4)}".encode()] + [r.choice(SORT_ELEMENTS) for _ in range(r.randint(1, 4))]),
    (1, lambda r, g: [b"LPOP", f"sl{r.randint(0, 4)}".encode(), b"2"]),
    (2, lambda r, g: [b"SADD", f"si{r.randint(0, 4)}".encode()]
     + [str(r.randint(-50, 50)).encode() for _ in range(r.randint(1, 4))]),
    (2, lambda r, g: [b"ZADD", f"sz{r.randint(0, 4)}".encode()]
     + [x for _ in range(r.randint(1, 3)) for x in (_score(g), r.choice(SORT_ELEMENTS))]),
    (2, lambda r, g: [b"SET", g.rng.choice([b"k1", b"k2", b"k3", b"k10", b"k7", b"k12", b"k42", b"k6", b"k11",
                                            b"{t1}:6", b"{t1}:11", b"ka", b"k"]), g.value()]),
    (1, lambda r, g: [b"HSET", g.rng.choice([b"k1", b"k2", b"k3", b"k10", b"k7", b"{t1}:1"]),
                      r.choice([b"f1", b"age", b"name"]), g.value()]),
    (6, _sort_ordered),
    (6, _sort_any),
    (0.5, lambda r, g: [b"SORT", g.key(), r.choice([b"BOGUS", b"STORE", b"BY", b"GET", b"LIMIT"])]),
    (0.5, lambda r, g: [b"LRANGE", _sort_dst(g), b"0", b"-1"]),
]

class Block(list):
    """What a maker returns for several commands that belong together (a
    MULTI ... EXEC block): commands() yields them one by one, in order."""


# Collection scans are followed to their end by the harness (its cursor walk
# needs the command alone on the connection), so they stay out of blocks.
NOT_INSIDE = {b"HSCAN", b"SSCAN", b"ZSCAN", b"SCAN"}


def _inner(g, makers, weights):
    while True:
        args = g.rng.choices(makers, weights)[0](g.rng, g)
        if args[0].upper() not in NOT_INSIDE:
            return args


# The key pool's names (Gen.keys, _hllkey, _geokey): how eval_wrap tells a
# command's keys from its other arguments.
_KEY_NAME = re.compile(rb"^(k\d+|\{t\d+\}:\d+|hll:\d+|geo:\d+)$")


def eval_wrap(args, rng):
    """The command `args` as a one-line script: EVAL "return
    redis.pcall('NAME', KEYS[1], ARGV[1], ...)" with its keys declared (so
    Larder can route it as it would the command) and every other argument in
    ARGV. A quarter use redis.call, whose errors are raised and come back
    with the script's name. The name (and a container command's subcommand)
    is a literal, so the harness can compare the reply as that command's."""
    name, rest = args[0], list(args[1:])
    words = [name]
    if name.upper() in (b"OBJECT", b"MEMORY", b"CONFIG", b"XGROUP", b"XINFO") and rest:
        words.append(rest.pop(0))
    keys, argv, refs = [], [], []
    for a in rest:
        a = a.encode() if isinstance(a, str) else a
        if _KEY_NAME.match(a):
            if a not in keys:
                keys.append(a)
            refs.append(f"KEYS[{keys.index(a) + 1}]")
        else:
            argv.append(a)
            refs.append(f"ARGV[{len(argv)}]")
    call = "redis.call" if rng.random() < 0.25 else "redis.pcall"
    body = ", ".join([f"'{w.decode()}'" for w in words] + refs)
    return [b"EVAL", f"return {call}({body})".encode(), str(len(keys)).encode()] + keys + argv


def _eval_maker(rng, g):
    return eval_wrap(_inner(g, g.plain_makers, g.plain_weights), rng)


def _multi_block(rng, g):
    """MULTI, one to six commands from the run's other families (EVAL among
    them when "eval" is in the run), EXEC (DISCARD now and then). Sometimes
    WATCH first, with commands between it and MULTI that may write the
    watched keys (then EXEC answers nil: one connection's own writes count);
    sometimes a queue-time error (EXECABORT), a nested MULTI or a WATCH
    inside (errors that do not abort)."""
    inner = lambda: _inner(g, g.inner_makers, g.inner_weights)  # noqa: E731
    out = Block()
    if rng.random() < 0.3:
        out.append([b"WATCH"] + _multi(g, rng.randint(1, 2)))
        out += [inner() for _ in range(rng.randint(0, 2))]
    body = [inner() for _ in range(rng.randint(1, 6))]
    extra = rng.random()
    if extra < 0.04:
        body.insert(rng.randint(0, len(body)), [b"NOSUCHCMD", g.key()])
    elif extra < 0.08:
        body.insert(rng.randint(0, len(body)), rng.choice([[b"GET"], [b"SET", g.key()], [b"HSET", g.key(), b"f"]]))
    elif extra < 0.11:
        body.insert(rng.randint(0, len(body)), [b"MULTI"])
    elif extra < 0.14:
        body.insert(rng.randint(0, len(body)), [b"WATCH", g.key()])
    out += [[b"MULTI"]] + body + [[b"DISCARD"] if rng.random() < 0.08 else [b"EXEC"]]
    if rng.random() < 0.05:
        out.append([b"UNWATCH"])
    return out


# Families that wrap the others: their makers draw from the families of the
# same run (Gen.inner_*), so name them beside the families to wrap. Their
# weight is a share of the draws (0.25: about one draw in four when alone
# with the plain families), whatever the plain families weigh together.
EVAL = [(0.25, _eval_maker)]
MULTI = [(0.2, _multi_block)]
WRAPPERS = ("eval", "multi")

FAMILIES = {"string": STRING, "keys": KEYS, "expiry": EXPIRY, "hash": HASH, "set": SET, "list": LIST,
            "zset": ZSET, "bitmap": BITMAP, "geo": GEO, "hll": HLL, "sort": SORT, "stream": STREAM,
            "eval": EVAL, "multi": MULTI}


def commands(seed, count, families=("string", "keys", "expiry")):
    """Yields `count` random commands drawn from the given families (a block
    counts as one draw and yields all its commands)."""
    g = Gen(seed)
    plain = [item for f in families if f not in WRAPPERS for item in FAMILIES[f]]
    inner = plain + (EVAL if "eval" in families else [])
    g.plain_weights, g.plain_makers = [w for w, _ in plain], [m for _, m in plain]
    g.inner_weights, g.inner_makers = [w for w, _ in inner], [m for _, m in inner]
    plain_total = sum(g.plain_weights)
    table = [(w * plain_total if f in WRAPPERS else w, m) for f in families for w, m in FAMILIES[f]]
    weights = [w for w, _ in table]
    makers = [m for _, m in table]
    for _ in range(count):
        maker = g.rng.choices(makers, weights)[0]
        out = maker(g.rng, g)
        if isinstance(out, Block):
            yield from out
        else:
            yield out
