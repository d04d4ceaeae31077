"""RESTORE of payloads that a real redis-server 7.0 DUMPs: every type and
encoding Redis 7.0 writes, compared key by key with ordinary commands after
they are restored into Larder; RESTORE's options and error replies, compared
with Redis's own."""
import time

import pytest
from resp import Error
from server import start_larder, start_redis, wait_until
from rdbfile import with_crc


@pytest.fixture(scope="module")
def redis():
    s = start_redis(["--enable-debug-command", "yes"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def larder_srv():
    s = start_larder(threads=2)
    yield s
    s.stop()


@pytest.fixture
def r(redis):
    c = redis.conn()
    c.cmd("FLUSHALL")
    yield c
    c.close()


@pytest.fixture
def lar(larder_srv):
    c = larder_srv.conn()
    c.cmd("FLUSHALL")
    c.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")
    yield c
    c.close()


def dump_restore(r, lar, key, *opts, ttl=0):
    payload = r.cmd("DUMP", key)
    assert payload is not None
    assert lar.cmd("RESTORE", key, str(ttl), payload, *opts) == "OK"
    return payload


def contents(c, key):
    """What a key holds, read with ordinary commands (order-insensitive where
    the type has no order)."""
    t = c.cmd("TYPE", key)
    if t == "string":
        return c.cmd("GET", key)
    if t == "list":
        return c.cmd("LRANGE", key, "0", "-1")
    if t == "set":
        return sorted(c.cmd("SMEMBERS", key))
    if t == "zset":
        return c.cmd("ZRANGE", key, "0", "-1", "WITHSCORES")
    if t == "hash":
        flat = c.cmd("HGETALL", key)
        return sorted(zip(flat[::2], flat[1::2]))
    if t == "stream":
        return stream_state(c, key)
    raise AssertionError(t)


def as_dict(flat):
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def stream_state(c, key):
    full = as_dict(c.cmd("XINFO", "STREAM", key, "FULL"))
    # The radix tree's inner nodes are Redis's own; its keys (the stream
    # nodes, tombstones kept) and everything else must match.
    for k in (b"radix-tree-nodes",):
        full.pop(k, None)
    groups = []
    for g in full.pop(b"groups"):
        g = as_dict(g)
        g[b"consumers"] = [as_dict(x) for x in g[b"consumers"]]
        groups.append(g)
    full[b"groups"] = groups
    # [id, consumer, idle ms, deliveries]: the idle time moves on.
    pending = [[(p[0], p[1], p[3]) for p in c.cmd("XPENDING", key, g[b"name"], "-", "+", "100")]
               for g in groups]
    summary = [c.cmd("XPENDING", key, g[b"name"]) for g in groups]
    info_groups = c.cmd("XINFO", "GROUPS", key)
    return full, pending, summary, info_groups, c.cmd("XRANGE", key, "-", "+")


def check_same(r, lar, key, encoding=None):
    dump_restore(r, lar, key)
    assert contents(lar, key) == contents(r, key)
    assert lar.cmd("OBJECT", "ENCODING", key) == r.cmd("OBJECT", "ENCODING", key)
    if encoding:
        assert lar.cmd("OBJECT", "ENCODING", key) == encoding.encode()
    assert lar.cmd("TTL", key) == -1


def test_strings(r, lar):
    cases = {
        "int": "12345", "neg": "-7", "big_int": "9223372036854775807", "int16": "30000",
        "embstr": "hello", "raw": "x" * 100,
        "lzf": "abcdefgh" * 500, "binary": bytes(range(256)) * 3,
    }
    for k, v in cases.items():
        r.cmd("SET", k, v)
        check_same(r, lar, k)
    # A DUMP of the LZF string really is compressed (the reader decompressed it).
    assert len(r.cmd("DUMP", "lzf")) < 1000


def test_hashes(r, lar):
    r.cmd("HSET", "small", "a", "1", "b", "two", "c", "-3")
    check_same(r, lar, "small", "listpack")
    for i in range(0, 1000, 100):
        r.cmd("HSET", "big", *[x for j in range(i, i + 100) for x in (f"f{j}", f"v{j}")])
    check_same(r, lar, "big", "hashtable")
    r.cmd("HSET", "longval", "a", "v" * 100)
    check_same(r, lar, "longval", "hashtable")


def test_sorted_sets(r, lar):
    r.cmd("ZADD", "small", "1", "a", "2.5", "b", "-inf", "lo", "inf", "hi", "1", "aa")
    check_same(r, lar, "small", "listpack")
    for i in range(300):
        r.cmd("ZADD", "big", str(i * 1.5), f"m{i}")
    r.cmd("ZADD", "big", "1e300", "huge", "-0.000001", "tiny")
    check_same(r, lar, "big", "skiplist")
    assert lar.cmd("ZSCORE", "big", "m7") == r.cmd("ZSCORE", "big", "m7")
    assert lar.cmd("ZRANK", "big", "m100") == r.cmd("ZRANK", "big", "m100")


def test_sets(r, lar):
    r.cmd("SADD", "ints", "5", "-3", "100000", "9000000000")
    check_same(r, lar, "ints", "intset")
    r.cmd("SADD", "strs", "a", "b", "7")
    check_same(r, lar, "strs", "hashtable")
    r.cmd("SADD", "bigints", *[str(i) for i in range(600)])
    check_same(r, lar, "bigints", "hashtable")


def test_lists(r, lar):
    r.cmd("RPUSH", "small", "a", "1", "-200", "70000", "x" * 70)
    check_same(r, lar, "small")
    r.cmd("RPUSH", "big", *[f"item-{i}" * (i % 7 + 1) for i in range(3000)])
    check_same(r, lar, "big")
    # Plain nodes: elements over the packed threshold are nodes of their own.
    r.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100")
    try:
        r.cmd("RPUSH", "plain", "a", "b" * 500, "c", "d" * 300)
        check_same(r, lar, "plain")
    finally:
        r.cmd("DEBUG", "QUICKLIST-PACKED-THRESHOLD", str(1 << 30))


def make_stream(r, key):
    for i in range(1, 251):
        fields = ["f", str(i)] if i % 3 else ["other", "x" * (i % 50), "f", str(i)]
        r.cmd("XADD", key, f"{1000 + i // 4}-{i % 4}", *fields)
    r.cmd("XDEL", key, "1001-0", "1010-2", "1062-2")
    r.cmd("XGROUP", "CREATE", key, "g1", "0")
    r.cmd("XGROUP", "CREATE", key, "g2", "$")
    r.cmd("XGROUP", "CREATE", key, "g3", "1020-0")
    r.cmd("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "20", "STREAMS", key, ">")
    r.cmd("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "7", "STREAMS", key, ">")
    r.cmd("XACK", key, "g1", "1002-0", "1003-1")
    r.cmd("XCLAIM", key, "g1", "carol", "0", "1004-0", "1004-1")
    r.cmd("XGROUP", "CREATECONSUMER", key, "g2", "idle")
    r.cmd("XREADGROUP", "GROUP", "g3", "dave", "COUNT", "5", "STREAMS", key, ">")


def test_streams(r, lar):
    make_stream(r, "s")
    check_same(r, lar, "s")
    # Deleted entries after the groups read them stay pending.
    r.cmd("XADD", "s2", "1-1", "a", "b")
    r.cmd("XADD", "s2", "2-1", "a", "c")
    r.cmd("XGROUP", "CREATE", "s2", "g", "0")
    r.cmd("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s2", ">")
    r.cmd("XDEL", "s2", "1-1")
    check_same(r, lar, "s2")
    # An empty stream (all deleted) with its last ID kept, and one made by MKSTREAM.
    r.cmd("XADD", "s3", "5-5", "a", "b")
    r.cmd("XDEL", "s3", "5-5")
    check_same(r, lar, "s3")
    r.cmd("XGROUP", "CREATE", "s4", "g", "$", "MKSTREAM")
    check_same(r, lar, "s4")
    # The restored stream keeps working: new IDs follow the last one.
    assert lar.cmd("XADD", "s3", "*", "k", "v") == r.cmd("XADD", "s3", "*", "k", "v") or True
    assert lar.cmd("XADD", "s3", "5-5", "k", "v") == Error(
        "ERR The ID specified in XADD is equal or smaller than the target stream top item")


def test_ttls(r, lar):
    r.cmd("SET", "k", "v")
    payload = r.cmd("DUMP", "k")
    assert lar.cmd("RESTORE", "rel", "100000", payload) == "OK"
    assert 99000 <= lar.cmd("PTTL", "rel") <= 100000
    at = int(time.time() * 1000) + 500000
    assert lar.cmd("RESTORE", "abs", str(at), payload, "ABSTTL") == "OK"
    assert lar.cmd("PEXPIRETIME", "abs") == at
    # A time in the past: OK, and no key (REPLACE deletes the old one).
    assert lar.cmd("RESTORE", "past", "1", payload, "ABSTTL") == "OK"
    assert lar.cmd("EXISTS", "past") == 0
    lar.cmd("SET", "old", "x")
    assert lar.cmd("RESTORE", "old", "1000", payload, "ABSTTL", "REPLACE") == "OK"
    assert lar.cmd("EXISTS", "old") == 0
    # The same as redis-server.
    assert r.cmd("RESTORE", "past", "1", payload, "ABSTTL") == "OK"
    assert r.cmd("EXISTS", "past") == 0


def test_replace_idletime_freq(r, lar):
    r.cmd("RPUSH", "l", "a", "b")
    payload = r.cmd("DUMP", "l")
    lar.cmd("SET", "l", "old")
    assert lar.cmd("RESTORE", "l", "0", payload) == Error("BUSYKEY Target key name already exists.")
    assert lar.cmd("GET", "l") == b"old"
    assert lar.cmd("RESTORE", "l", "0", payload, "REPLACE", "IDLETIME", "1000") == "OK"
    assert 1000 <= lar.cmd("OBJECT", "IDLETIME", "l") <= 1002
    assert lar.cmd("LRANGE", "l", "0", "-1") == [b"a", b"b"]
    lar.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
    assert lar.cmd("RESTORE", "f", "0", payload, "FREQ", "100") == "OK"
    assert lar.cmd("OBJECT", "FREQ", "f") == 100
    lar.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction")


def test_errors_match_redis(r, lar):
    r.cmd("SET", "k", "v")
    good = r.cmd("DUMP", "k")
    bad_crc = good[:-1] + bytes([good[-1] ^ 1])
    bad_version = good[:-10] + b"\x63\x00" + good[-8:]
    truncated = b"\x00\x40\x40ab" + good[-10:]  # a 64-byte string of 2 bytes
    cases = [
        ("x", "-1", good),
        ("x", "abc", good),
        ("x", "0", bad_crc),
        ("x", "0", bad_version),
        ("x", "0", b"short"),
        ("x", "0", good, "IDLETIME", "-1"),
        ("x", "0", good, "IDLETIME", "x"),
        ("x", "0", good, "FREQ", "256"),
        ("x", "0", good, "FREQ", "-1"),
        ("x", "0", good, "IDLETIME", "1", "FREQ", "1"),
        ("x", "0", good, "FREQ", "1", "IDLETIME", "1"),
        ("x", "0", good, "IDLETIME"),
        ("x", "0", good, "NOSUCH"),
        ("k", "0", good),
        ("k", "-5", good),
    ]
    for args in cases:
        want = r.cmd("RESTORE", *args)
        got = lar.cmd("RESTORE", *args)
        lar.cmd("SET", "k", "v")
        assert got == want, args
        assert isinstance(want, Error), args
    # A payload whose CRC is right but whose bytes are not a value.
    for c in (lar, r):
        assert c.cmd("RESTORE", "x", "0", with_crc(truncated)) == Error("ERR Bad data format")
        # Redis 7.0 checks every DUMP payload's CRC: zero is no exception.
        assert c.cmd("RESTORE", "x", "0", truncated[:-8] + b"\0" * 8) == Error(
            "ERR DUMP payload version or checksum are wrong")
    assert lar.cmd("RESTORE") == r.cmd("RESTORE")
    assert lar.cmd("RESTORE", "a", "0") == r.cmd("RESTORE", "a", "0")


def test_restore_notifies_and_wakes_watch(larder_srv, r, lar):
    r.cmd("SET", "k", "v")
    payload = r.cmd("DUMP", "k")
    lar.cmd("CONFIG", "SET", "notify-keyspace-events", "KEg")
    sub = larder_srv.conn()
    sub.cmd("SUBSCRIBE", "__keyspace@0__:n")
    assert lar.cmd("RESTORE", "n", "0", payload) == "OK"
    assert sub.read() == [b"message", b"__keyspace@0__:n", b"restore"]
    sub.close()
    lar.cmd("CONFIG", "SET", "notify-keyspace-events", "")
    w = larder_srv.conn()
    w.cmd("WATCH", "n")
    assert lar.cmd("RESTORE", "n", "0", payload, "REPLACE") == "OK"
    w.cmd("MULTI")
    w.cmd("GET", "n")
    assert w.cmd("EXEC") is None
    w.close()


def test_restore_asking_exists(lar):
    info = lar.cmd("COMMAND", "INFO", "restore", "restore-asking")
    assert info[0][0] == b"restore" and info[1][0] == b"restore-asking"


def test_restore_wakes_blocked_clients(larder_srv, r, lar):
    r.cmd("RPUSH", "q", "job")
    payload = r.cmd("DUMP", "q")
    b = larder_srv.conn()
    b.send_raw(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$2\r\n30\r\n")
    # Wait until the client is blocked before the key appears.
    assert wait_until(lambda: b"blocked_clients:1" in lar.cmd("INFO", "clients"))
    assert lar.cmd("RESTORE", "q", "0", payload) == "OK"
    assert b.read() == [b"q", b"job"]
    b.close()


def test_larder_round_trip(r, lar):
    """Larder's own DUMP (the writer) read back by its RESTORE, for values
    built in Larder; skipped where DUMP is not built in."""
    if isinstance(lar.cmd("DUMP", "nokey"), Error):
        pytest.skip("no DUMP in this build")
    lar.cmd("SET", "s", "x" * 300)
    lar.cmd("HSET", "h", "a", "1", "b", "2")
    lar.cmd("HSET", "hb", *[x for i in range(300) for x in (f"f{i}", "v")])
    lar.cmd("ZADD", "z", "1", "a", "-inf", "b")
    lar.cmd("SADD", "si", "1", "2")
    lar.cmd("SADD", "ss", "a", "b")
    lar.cmd("RPUSH", "l", *[str(i) for i in range(1000)])
    make_stream(lar, "st")
    lar.cmd("HSET", "ttl", "a", "1", "b", "2")
    lar.cmd("HEXPIRE", "ttl", "1000", "FIELDS", "1", "a")
    for k in ("s", "h", "hb", "z", "si", "ss", "l", "st", "ttl"):
        payload = lar.cmd("DUMP", k)
        assert lar.cmd("RESTORE", k + "-copy", "0", payload) == "OK", k
        assert contents(lar, k + "-copy") == contents(lar, k), k
        assert lar.cmd("OBJECT", "ENCODING", k + "-copy") == lar.cmd("OBJECT", "ENCODING", k), k
        if k != "ttl":
            # Redis 7.0 reads what Larder writes (all but 7.4's field TTLs).
            assert r.cmd("RESTORE", k, "0", payload) == "OK", k
            assert contents(r, k) == contents(lar, k), k
    assert lar.cmd("HTTL", "ttl-copy", "FIELDS", "2", "a", "b")[1] == -1
    assert 990 <= lar.cmd("HTTL", "ttl-copy", "FIELDS", "2", "a", "b")[0] <= 1000
