"""HyperLogLog values move between the servers: a value Redis wrote, stored
in Larder with SET, counts and grows the same there, and the reverse, for
sparse and dense values (the bytes after further additions stay identical)."""
import random


def _grow(conn, key, elements):
    for i in range(0, len(elements), 100):
        conn.cmd("PFADD", key, *elements[i:i + 100])


def _transfer_and_compare(differ, src, dst, n):
    rng = random.Random(n)
    elements = [f"user:{rng.randint(0, 10**9)}" for _ in range(n)]
    _grow(src, "h", elements)
    value = src.cmd("GET", "h")
    assert dst.cmd("SET", "h", value) == "OK"
    # Both servers now hold the same bytes: every later reply must agree.
    differ.run("PFDEBUG", "ENCODING", "h")
    differ.run("PFCOUNT", "h")
    more = [f"more:{i}" for i in range(n // 2 + 10)]
    _grow(differ.redis, "h", more)
    _grow(differ.larder, "h", more)
    differ.run("GET", "h")
    differ.run("PFCOUNT", "h")
    differ.run("PFCOUNT", "h", "nokey")


def test_redis_values_read_by_larder(differ):
    for n in (5, 300, 20000):  # sparse, sparse near the limit, dense
        differ.run("FLUSHALL")
        _transfer_and_compare(differ, differ.redis, differ.larder, n)


def test_larder_values_read_by_redis(differ):
    for n in (5, 300, 20000):
        differ.run("FLUSHALL")
        _transfer_and_compare(differ, differ.larder, differ.redis, n)
