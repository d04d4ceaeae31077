"""SCAN over a keyspace split across shards: a call goes on from shard to
shard until COUNT keys were looked at, so a small keyspace comes back in one
call with cursor 0 (as in Redis), and a large one still completes with every
key, cursors staying valid across calls."""
import pytest
from resp import Error
from server import start_larder


@pytest.fixture(scope="module", params=[2, 4])
def srv(request):
    s = start_larder(threads=request.param)
    yield s
    s.stop()


@pytest.fixture
def c(srv):
    conn = srv.conn()
    conn.cmd("FLUSHALL")
    yield conn
    conn.close()


def full_scan(c, *opts):
    seen, cursor, calls = [], b"0", 0
    while True:
        cursor, keys = c.cmd("SCAN", cursor, *opts)
        seen += keys
        calls += 1
        if cursor == b"0":
            return seen, calls


def test_small_keyspace_in_one_call(c):
    assert c.cmd("SCAN", "0") == [b"0", []]
    for i in range(5):
        c.cmd("SET", f"k{i}", "v")
    cursor, keys = c.cmd("SCAN", "0", "COUNT", "10")
    assert cursor == b"0"
    assert sorted(keys) == [f"k{i}".encode() for i in range(5)]
    # The default COUNT is 10.
    cursor, keys = c.cmd("SCAN", "0")
    assert cursor == b"0" and len(keys) == 5


def test_filters_apply_across_shards(c):
    for i in range(6):
        c.cmd("SET", f"s{i}", "v")
        c.cmd("RPUSH", f"l{i}", "x")
    cursor, keys = c.cmd("SCAN", "0", "COUNT", "100", "MATCH", "s*")
    assert cursor == b"0" and sorted(keys) == [f"s{i}".encode() for i in range(6)]
    cursor, keys = c.cmd("SCAN", "0", "COUNT", "100", "TYPE", "list")
    assert cursor == b"0" and sorted(keys) == [f"l{i}".encode() for i in range(6)]
    # Filtered-out keys still count against COUNT (Redis's meaning), but the
    # iteration completes with exactly the matching keys.
    keys, _ = full_scan(c, "COUNT", "2", "MATCH", "l*")
    assert sorted(set(keys)) == [f"l{i}".encode() for i in range(6)]


def test_large_keyspace_pages_and_completes(c):
    n = 2000
    c.pipeline([("SET", f"key:{i}", "v") for i in range(n)])
    keys, calls = full_scan(c, "COUNT", "50")
    assert set(keys) == {f"key:{i}".encode() for i in range(n)}
    assert calls > 1
    keys, calls = full_scan(c, "COUNT", "100000")
    assert calls == 1 and len(set(keys)) == n


def test_cursor_stays_valid_while_keys_change(c):
    n = 1000
    c.pipeline([("SET", f"stay:{i}", "v") for i in range(n)])
    seen, cursor, step = set(), b"0", 0
    while True:
        cursor, keys = c.cmd("SCAN", cursor, "COUNT", "25")
        seen.update(keys)
        # Keys come and go between calls; those present throughout must be returned.
        c.cmd("SET", f"new:{step}", "v")
        c.cmd("DEL", f"new:{step - 3}")
        step += 1
        if cursor == b"0":
            break
    assert {f"stay:{i}".encode() for i in range(n)} <= seen


def test_cursor_naming_no_shard_is_refused(c):
    # The low 8 bits name the shard; 255 names none at these thread counts.
    assert c.cmd("SCAN", "255") == Error("ERR invalid cursor")
