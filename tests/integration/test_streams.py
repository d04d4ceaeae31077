"""Streams over real sockets: blocking XREAD/XREADGROUP woken by an XADD sent
on another connection to a key of another shard, the redis-py consumer-group
pattern (XGROUP CREATE, XREADGROUP, XACK), XAUTOCLAIM recovery of a dead
consumer's entries, and blocked group readers told that their group or
stream went away."""
import time

import pytest
from resp import Error, encode
from server import start_larder
from slots import shard_of


@pytest.fixture(scope="module")
def larder3():
    s = start_larder(threads=3)
    yield s
    s.stop()


def wait_blocked(conn, n, timeout=30):
    """Polls INFO until `n` clients are blocked. (CLIENT LIST's cmd= names a
    client's last command, which a reader that was just served still shows,
    so it cannot tell that the next read has blocked.)"""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in conn.cmd("INFO", "clients").decode().splitlines():
            if line.startswith("blocked_clients:") and int(line.split(":")[1]) >= n:
                return
        time.sleep(0.02)
    raise AssertionError("clients did not block")


def keys_on_distinct_shards(prefix, shards):
    """One key per shard, in shard order."""
    found = {}
    i = 0
    while len(found) < shards:
        k = f"{prefix}{i}"
        found.setdefault(shard_of(k, shards), k)
        i += 1
    return [found[s] for s in range(shards)]


def test_xread_dollar_is_woken_by_xadd_on_another_shard(larder, conn):
    a, b = keys_on_distinct_shards("xr:", 2)
    conn.cmd("XADD", b, "1-0", "f", "old")
    reader = larder.conn()
    reader.send_raw(encode("XREAD", "BLOCK", "0", "STREAMS", a, b, "$", "$"))
    wait_blocked(conn, 1)
    # An entry added before the reader blocked is not news; this one is.
    assert conn.cmd("XADD", b, "2-0", "f", "new") == b"2-0"
    assert reader.read() == [[b.encode(), [[b"2-0", [b"f", b"new"]]]]]
    # The other shard's key wakes it too.
    reader.send_raw(encode("XREAD", "BLOCK", "0", "STREAMS", a, b, "$", "$"))
    wait_blocked(conn, 1)
    assert conn.cmd("XADD", a, "5-0", "g", "v") == b"5-0"
    assert reader.read() == [[a.encode(), [[b"5-0", [b"g", b"v"]]]]]
    reader.close()


def test_xread_block_times_out_with_a_null_array(larder, conn):
    reader = larder.conn()
    t0 = time.time()
    assert reader.cmd("XREAD", "BLOCK", "100", "STREAMS", "xr:empty", "$") is None
    assert time.time() - t0 >= 0.09
    reader.close()


def test_xreadgroup_waiters_on_three_shards_each_get_one_entry(larder3):
    conn = larder3.conn()
    conn.cmd("FLUSHALL")
    keys = keys_on_distinct_shards("jobs:", 3)
    for k in keys:
        assert conn.cmd("XGROUP", "CREATE", k, "workers", "$", "MKSTREAM") == "OK"
    readers = []
    for i, k in enumerate(keys):
        r = larder3.conn()
        # Each waits on all three streams; the entry goes to the oldest waiter.
        args = ["XREADGROUP", "GROUP", "workers", f"w{i}", "COUNT", "1", "BLOCK", "0", "STREAMS"] + keys + [">"] * 3
        r.send_raw(encode(*args))
        wait_blocked(conn, i + 1)
        readers.append(r)
    for i, k in enumerate(keys):
        assert conn.cmd("XADD", k, f"{i + 1}-0", "job", str(i)) == f"{i + 1}-0".encode()
    got = sorted(r.read()[0][0] for r in readers)
    assert got == sorted(k.encode() for k in keys)
    for k in keys:
        assert conn.cmd("XPENDING", k, "workers")[0] == 1
    for r in readers:
        r.close()
    conn.close()


def test_redis_py_consumer_group_pattern(larder):
    import redis
    r = redis.Redis(port=larder.port)
    r.flushall()
    r.xgroup_create("user_updates", "cache_updaters", id="0", mkstream=True)
    ids = [r.xadd("user_updates", {"user_id": str(i), "field": "email"}, id=f"{i + 1}-0") for i in range(5)]
    assert ids == [f"{i + 1}-0".encode() for i in range(5)]
    got = r.xreadgroup("cache_updaters", "worker-1", {"user_updates": ">"}, count=3)
    assert got[0][0] == b"user_updates"
    entries = got[0][1]
    assert [e[0] for e in entries] == ids[:3]
    assert entries[0][1] == {b"user_id": b"0", b"field": b"email"}
    assert r.xack("user_updates", "cache_updaters", *[e[0] for e in entries]) == 3
    summary = r.xpending("user_updates", "cache_updaters")
    assert summary["pending"] == 0
    rest = r.xreadgroup("cache_updaters", "worker-2", {"user_updates": ">"}, block=100)
    assert [e[0] for e in rest[0][1]] == ids[3:]
    info = r.xinfo_groups("user_updates")
    assert info[0]["name"] == b"cache_updaters"
    assert info[0]["pending"] == 2
    assert info[0]["lag"] == 0
    assert r.xlen("user_updates") == 5
    assert r.type("user_updates") == b"stream"
    r.close()


def test_xautoclaim_recovers_a_dead_consumers_entries(larder, conn):
    conn.cmd("XGROUP", "CREATE", "orders", "g", "0", "MKSTREAM")
    for i in range(4):
        conn.cmd("XADD", "orders", f"{i + 1}-0", "order", str(i))
    dead = larder.conn()
    got = dead.cmd("XREADGROUP", "GROUP", "g", "dead", "STREAMS", "orders", ">")
    assert len(got[0][1]) == 4
    dead.close()  # never acknowledges
    # A consumer that reads new entries sees none: they are pending elsewhere.
    assert conn.cmd("XREADGROUP", "GROUP", "g", "alive", "STREAMS", "orders", ">") is None
    # After a short idle time they can be claimed, a page at a time.
    time.sleep(0.05)
    nxt, claimed, deleted = conn.cmd("XAUTOCLAIM", "orders", "g", "alive", "20", "0", "COUNT", "3")
    assert [e[0] for e in claimed] == [b"1-0", b"2-0", b"3-0"]
    assert nxt == b"4-0" and deleted == []
    conn.cmd("XDEL", "orders", "4-0")
    nxt, claimed, deleted = conn.cmd("XAUTOCLAIM", "orders", "g", "alive", "20", nxt)
    assert nxt == b"0-0" and claimed == [] and deleted == [b"4-0"]
    pending = conn.cmd("XPENDING", "orders", "g", "-", "+", "10")
    assert [(p[0], p[1], p[3]) for p in pending] == [(f"{i}-0".encode(), b"alive", 2) for i in (1, 2, 3)]
    assert conn.cmd("XACK", "orders", "g", "1-0", "2-0", "3-0") == 3
    assert conn.cmd("XPENDING", "orders", "g")[0] == 0


def test_blocked_group_reader_hears_of_destroy_and_delete(larder, conn):
    conn.cmd("XGROUP", "CREATE", "gone", "g", "$", "MKSTREAM")
    r = larder.conn()
    r.send_raw(encode("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "gone", ">"))
    wait_blocked(conn, 1)
    assert conn.cmd("XGROUP", "DESTROY", "gone", "g") == 1
    assert r.read() == Error("NOGROUP the consumer group this client was blocked on no longer exists")
    conn.cmd("XGROUP", "CREATE", "gone", "g", "$")
    r.send_raw(encode("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "gone", ">"))
    wait_blocked(conn, 1)
    assert conn.cmd("DEL", "gone") == 1
    assert r.read() == Error("UNBLOCKED the stream key no longer exists")
    # A plain XREAD keeps waiting through a delete and gets the next entry.
    r.send_raw(encode("XREAD", "BLOCK", "0", "STREAMS", "gone", "$"))
    wait_blocked(conn, 1)
    conn.cmd("XADD", "gone", "1-0", "a", "b")
    assert r.read() == [[b"gone", [[b"1-0", [b"a", b"b"]]]]]
    r.close()
