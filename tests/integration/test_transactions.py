"""MULTI/EXEC/WATCH over real sockets at --threads 2, so that a transaction's
keys and its watched keys live on different shards: queueing and its
refusals (EXECABORT), runtime errors that do not stop the rest, every way a
watched key changes (another client, expiry, eviction, FLUSHALL/SWAPDB, a
read-through load, an invalidation), blocking commands that do not block,
and the refusal of write-through keys inside a transaction."""
import os
import sqlite3
import tempfile
import threading
import time

import pytest

from resp import Error, encode
from server import start_larder, wait_until
from slots import shard_of

SHARDS = 2


def keys_on(shard, n, prefix="k"):
    """n key names owned by `shard`."""
    out, i = [], 0
    while len(out) < n:
        k = f"{prefix}{i}"
        if shard_of(k, SHARDS) == shard:
            out.append(k)
        i += 1
    return out


A0, A1 = keys_on(0, 2, "a")
B0, B1 = keys_on(1, 2, "b")


@pytest.fixture
def c(larder):
    conn = larder.conn()
    conn.cmd("FLUSHALL")
    yield conn
    conn.close()


def test_queue_and_exec_across_shards(c):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", A0, "1") == "QUEUED"
    assert c.cmd("INCR", A0) == "QUEUED"
    assert c.cmd("SET", B0, "x") == "QUEUED"
    assert c.cmd("MGET", A0, B0, "nokey") == "QUEUED"
    assert c.cmd("LPUSH", A0, "v") == "QUEUED"  # a runtime error: the rest still runs
    assert c.cmd("DEL", A0, B0) == "QUEUED"
    replies = c.cmd("EXEC")
    assert replies[:4] == ["OK", 2, "OK", [b"2", b"x", None]]
    assert isinstance(replies[4], Error) and str(replies[4]).startswith("WRONGTYPE")
    assert replies[5] == 2
    assert c.cmd("EXISTS", A0, B0) == 0


def test_refused_while_queueing_aborts_exec(c):
    c.cmd("MULTI")
    c.cmd("SET", A0, "1")
    assert str(c.cmd("NOSUCHCOMMAND")).startswith("ERR unknown command")
    assert str(c.cmd("GET")).startswith("ERR wrong number of arguments")
    c.cmd("SET", B0, "1")
    assert str(c.cmd("EXEC")).startswith("EXECABORT Transaction discarded because of previous errors")
    assert c.cmd("EXISTS", A0, B0) == 0
    assert c.cmd("PING") == "PONG"  # the MULTI state is gone


def test_control_errors_match_redis(c):
    assert str(c.cmd("EXEC")) == "ERR EXEC without MULTI"
    assert str(c.cmd("DISCARD")) == "ERR DISCARD without MULTI"
    c.cmd("MULTI")
    assert str(c.cmd("MULTI")) == "ERR MULTI calls can not be nested"
    assert str(c.cmd("WATCH", A0)) == "ERR WATCH inside MULTI is not allowed"
    assert c.cmd("EXEC") == []  # neither of those flags the transaction
    c.cmd("MULTI")
    c.cmd("SET", A0, "1")
    assert c.cmd("DISCARD") == "OK"
    assert c.cmd("EXISTS", A0) == 0


def test_watch_across_shards(larder, c):
    other = larder.conn()
    try:
        c.cmd("SET", B0, "1")
        assert c.cmd("WATCH", A0, B0) == "OK"
        other.cmd("SET", B0, "2")  # the key on the other shard changes
        c.cmd("MULTI")
        c.cmd("SET", A0, "x")
        assert c.cmd("EXEC") is None
        assert c.cmd("EXISTS", A0) == 0
        # Not watched any more: the next transaction runs.
        other.cmd("SET", B0, "3")
        c.cmd("MULTI")
        c.cmd("SET", A0, "y")
        assert c.cmd("EXEC") == ["OK"]
        # Watched and untouched: it runs.
        c.cmd("WATCH", A0, B0, B1)
        c.cmd("MULTI")
        c.cmd("INCR", A1)
        assert c.cmd("EXEC") == [1]
        # UNWATCH forgets.
        c.cmd("WATCH", B0)
        other.cmd("SET", B0, "4")
        c.cmd("UNWATCH")
        c.cmd("MULTI")
        c.cmd("PING")
        assert c.cmd("EXEC") == ["PONG"]
    finally:
        other.close()


def test_watch_fails_on_expiry_flushall_and_swapdb(larder, c):
    c.cmd("SET", B0, "v", "PX", "150")
    c.cmd("WATCH", B0)
    wait_until(lambda: c.cmd("EXISTS", B0) == 0, timeout=30)
    c.cmd("MULTI")
    c.cmd("PING")
    assert c.cmd("EXEC") is None

    c.cmd("SET", B0, "v")
    c.cmd("WATCH", B0)
    larder.conn().cmd("FLUSHALL")
    c.cmd("MULTI")
    c.cmd("PING")
    assert c.cmd("EXEC") is None

    # A key that does not exist is not touched by FLUSHALL ...
    c.cmd("WATCH", B1)
    larder.conn().cmd("FLUSHALL")
    c.cmd("MULTI")
    c.cmd("PING")
    assert c.cmd("EXEC") == ["PONG"]
    # ... but SWAPDB bringing it in is a change.
    o = larder.conn()
    o.cmd("SELECT", "1")
    o.cmd("SET", B1, "from db 1")
    c.cmd("WATCH", B1)
    o.cmd("SWAPDB", "0", "1")
    c.cmd("MULTI")
    c.cmd("PING")
    assert c.cmd("EXEC") is None
    o.close()


def test_blocking_commands_do_not_block_inside_exec(c):
    c.cmd("MULTI")
    c.cmd("BLPOP", A0, "0")
    c.cmd("BRPOPLPUSH", A0, B0, "0")
    c.cmd("BZPOPMIN", A1, "0")
    assert c.cmd("EXEC") == [None, None, None]


def test_exec_serves_clients_blocked_on_its_keys(larder, c):
    waiter = larder.conn()
    waiter.send_raw(encode("BLPOP", B0, "0"))
    time.sleep(0.1)  # let it block (the push below would be served either way)
    c.cmd("MULTI")
    c.cmd("RPUSH", B0, "first")
    c.cmd("RPUSH", B0, "second")
    c.cmd("SET", A0, "x")
    assert c.cmd("EXEC") == [1, 2, "OK"]
    assert waiter.read() == [B0.encode(), b"first"]
    assert c.cmd("LRANGE", B0, "0", "-1") == [b"second"]
    waiter.close()


def test_connection_commands_inside_exec(c):
    c.cmd("MULTI")
    c.cmd("SELECT", "3")
    c.cmd("SET", A0, "in 3")
    c.cmd("DBSIZE")
    c.cmd("SELECT", "0")
    c.cmd("DBSIZE")
    assert c.cmd("EXEC") == ["OK", "OK", 1, "OK", 0]
    c.cmd("SELECT", "3")
    assert c.cmd("GET", A0) == b"in 3"
    c.cmd("SELECT", "0")


def test_eviction_touches_watched_keys():
    srv = start_larder(threads=SHARDS, args=["--maxmemory-policy", "allkeys-random"])
    try:
        c = srv.conn()
        c.cmd("SET", B0, "v")
        c.cmd("WATCH", B0)
        o = srv.conn()
        used = int(dict(line.split(":", 1) for line in o.cmd("INFO", "memory").decode().split("\r\n")
                        if ":" in line)["used_memory"])
        o.cmd("CONFIG", "SET", "maxmemory", str(used))  # at the limit: everything goes
        big = "x" * 100000
        for i in range(40):
            o.cmd("SET", f"filler{i}", big)
        wait_until(lambda: o.cmd("EXISTS", B0) == 0, timeout=30)
        o.cmd("CONFIG", "SET", "maxmemory", "0")
        c.cmd("MULTI")
        c.cmd("PING")
        assert c.cmd("EXEC") is None
    finally:
        srv.stop()


def test_oom_refuses_queueing_and_exec_with_writes():
    srv = start_larder(threads=SHARDS)
    try:
        c, o = srv.conn(), srv.conn()
        c.cmd("SET", A0, "v")
        c.cmd("MULTI")
        c.cmd("GET", A0)
        c.cmd("SET", B0, "1")
        o.cmd("CONFIG", "SET", "maxmemory", "1")
        r = c.cmd("EXEC")
        assert str(r).startswith("EXECABORT Transaction discarded because of: OOM")
        c.cmd("MULTI")
        assert str(c.cmd("GET", A0)).startswith("OOM")  # queueing takes memory: refused
        assert str(c.cmd("EXEC")).startswith("EXECABORT")
        c.cmd("MULTI")
        o.cmd("CONFIG", "SET", "maxmemory", "0")
        c.cmd("GET", A0)
        o.cmd("CONFIG", "SET", "maxmemory", "1")
        assert c.cmd("EXEC") == [b"v"]  # only reads: allowed over the limit
        o.cmd("CONFIG", "SET", "maxmemory", "0")
    finally:
        srv.stop()


@pytest.fixture
def cached():
    d = tempfile.mkdtemp(prefix="larder-tx-")
    path = os.path.join(d, "db.sqlite")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE counters (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
        INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
    """)
    db.commit()
    db.close()
    conf = f"""
cache-source demo sqlite:{path}
cache-rule user:<id> source demo as string ttl 100s load "SELECT name FROM users WHERE id = :id"
cache-rule broken:<id> source demo as string ttl 100s load "SELECT missing_column FROM no_such_table WHERE id = :id"
cache-rule counter:<id> source demo as string ttl 1h write through store "INSERT INTO counters (id, v) VALUES (:id, :value) ON CONFLICT (id) DO UPDATE SET v = excluded.v" delete "DELETE FROM counters WHERE id = :id" load "SELECT v FROM counters WHERE id = :id"
"""
    srv = start_larder(threads=SHARDS, config_text=conf)
    yield srv, path
    srv.stop()


def test_read_through_load_touches_watched_keys(cached):
    srv, _ = cached
    c, o = srv.conn(), srv.conn()
    c.cmd("WATCH", "user:1")
    assert o.cmd("GET", "user:1") == b"ann"  # loaded from the database: a change
    c.cmd("MULTI")
    c.cmd("PING")
    assert c.cmd("EXEC") is None
    # (An invalidation from PostgreSQL: test_read_through.py's
    # test_changes_in_postgres_invalidate_cached_keys.)


def rule_stats(c, pattern):
    text = c.cmd("INFO", "cache")
    text = text.decode() if isinstance(text, bytes) else text
    for line in text.split("\r\n"):
        k, _, v = line.partition(":")
        if k.startswith("rule") and f"pattern={pattern}," in v:
            return dict(kv.split("=", 1) for kv in v.split(","))
    raise AssertionError(f"no rule {pattern} in INFO cache")


def user_ids_on_both_shards(path):
    """Ids of two new users whose keys live on different shards."""
    ids = {}
    i = 100
    while len(ids) < 2:
        ids.setdefault(shard_of(f"user:{i}", SHARDS), i)
        i += 1
    db = sqlite3.connect(path)
    db.executemany("INSERT INTO users VALUES (?, ?)", [(i, f"name{i}") for i in ids.values()])
    db.commit()
    db.close()
    return ids[0], ids[1]


def test_exec_loads_its_reads_first(cached):
    """Reads queued in MULTI of keys a rule covers load before the unit runs
    (on each key's shard, once each), so EXEC sees the database's values."""
    srv, path = cached
    c = srv.conn()
    u0, u1 = user_ids_on_both_shards(path)
    assert c.cmd("MULTI") == "OK"
    for k in ("user:1", "user:2", "nope-key", f"user:{u0}", f"user:{u1}", "user:1"):
        assert c.cmd("GET", k) == "QUEUED"
    assert c.cmd("EXEC") == [b"ann", b"bob", None, f"name{u0}".encode(), f"name{u1}".encode(), b"ann"]
    st = rule_stats(c, "user:<id>")
    assert st["loads"] == "4" and st["misses"] == "4", st
    # Cached now: a transaction reading them loads nothing, and a row that
    # is not there is remembered as not there (nil, no error).
    c.cmd("MULTI")
    c.cmd("GET", "user:1")
    c.cmd("MGET", f"user:{u0}", f"user:{u1}")
    c.cmd("GET", "user:999")
    assert c.cmd("EXEC") == [b"ann", [f"name{u0}".encode(), f"name{u1}".encode()], None]
    st = rule_stats(c, "user:<id>")
    assert st["loads"] == "5", st  # user:999 only
    # Outside a transaction the same keys are hits.
    assert c.cmd("GET", "user:2") == b"bob"
    assert rule_stats(c, "user:<id>")["loads"] == "5"


def test_exec_answers_a_load_error_and_runs_nothing(cached):
    srv, _ = cached
    c = srv.conn()
    c.cmd("MULTI")
    c.cmd("SET", "plain", "1")
    c.cmd("GET", "broken:1")
    c.cmd("GET", "user:1")
    r = c.cmd("EXEC")
    assert isinstance(r, Error) and "failed to load 'broken:1'" in str(r), r
    assert c.cmd("EXISTS", "plain") == 0
    # The transaction is over: the connection goes on as ever.
    assert str(c.cmd("EXEC")).startswith("ERR EXEC without MULTI")
    assert c.cmd("GET", "user:1") == b"ann"


def test_exec_fails_when_a_watched_key_has_to_load(cached):
    """A load of a watched key is a change of it: the first EXEC that loads
    it answers nil; once it is cached the same transaction goes through."""
    srv, _ = cached
    c = srv.conn()
    for expected in (None, [b"bob", "OK"]):
        c.cmd("WATCH", "user:2")
        c.cmd("MULTI")
        c.cmd("GET", "user:2")
        c.cmd("SET", "seen", "1")
        assert c.cmd("EXEC") == expected
    assert rule_stats(c, "user:<id>")["loads"] == "1"


def test_pipelined_exec_waiting_for_loads_keeps_order(cached):
    """Commands pipelined after an EXEC that waits for a load run after it."""
    srv, _ = cached
    c = srv.conn()
    c.send_raw(b"".join(encode(*cmd) for cmd in (
        ("MULTI",), ("GET", "user:1"), ("SET", "after", "x"), ("EXEC",),
        ("SET", "user:1", "changed"), ("GET", "after"))))
    replies = [c.read() for _ in range(6)]
    assert replies[3] == [b"ann", "OK"], replies
    assert replies[4:] == ["OK", b"x"]
    assert c.cmd("GET", "user:1") == b"changed"


def test_write_through_keys_are_refused_before_anything_runs(cached):
    srv, path = cached
    c = srv.conn()
    c.cmd("MULTI")
    c.cmd("SET", "plain", "1")
    r = c.cmd("SET", "counter:7", "5")
    assert isinstance(r, Error) and "write-through or write-behind key" in str(r)
    assert str(c.cmd("EXEC")).startswith("EXECABORT")
    assert c.cmd("EXISTS", "plain") == 0
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM counters").fetchone()[0] == 0
    db.close()
    # Outside a transaction the rule writes it as ever.
    assert c.cmd("SET", "counter:7", "5") == "OK"


def test_concurrent_transfers_keep_the_total(larder, c):
    """Transactions moving amounts between keys on the two shards, readers
    summing all balances in transactions: the total never changes."""
    accounts = keys_on(0, 3, "acct") + keys_on(1, 3, "acct")
    for k in accounts:
        c.cmd("SET", k, "100")
    total = 100 * len(accounts)
    errors = []

    def mover(seed):
        conn = larder.conn()
        try:
            for i in range(300):
                src = accounts[(seed + i) % len(accounts)]
                dst = accounts[(seed * 7 + i * 3 + 1) % len(accounts)]
                if src == dst:
                    continue
                conn.cmd("MULTI")
                conn.cmd("DECRBY", src, "7")
                conn.cmd("INCRBY", dst, "7")
                r = conn.cmd("EXEC")
                if not isinstance(r, list) or len(r) != 2:
                    errors.append(("mover", r))
        finally:
            conn.close()

    def reader():
        conn = larder.conn()
        try:
            for _ in range(300):
                conn.cmd("MULTI")
                conn.cmd("MGET", *accounts)
                r = conn.cmd("EXEC")
                s = sum(int(v) for v in r[0])
                if s != total:
                    errors.append(("sum", s))
        finally:
            conn.close()

    threads = [threading.Thread(target=mover, args=(s,)) for s in range(3)] + \
              [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sum(int(v) for v in c.cmd("MGET", *accounts)) == total


def test_acl_is_checked_again_at_exec(larder, c):
    admin = larder.conn()
    try:
        admin.cmd("ACL", "SETUSER", "txuser", "on", ">pw", "~*", "+@all")
        u = larder.conn()
        assert u.cmd("AUTH", "txuser", "pw") == "OK"
        u.cmd("MULTI")
        u.cmd("SET", A0, "1")
        u.cmd("GET", A0)
        admin.cmd("ACL", "SETUSER", "txuser", "-set")
        r = u.cmd("EXEC")
        assert str(r[0]).startswith("NOPERM ACLs rules changed between the moment the transaction was accumulated")
        assert str(r[0]).endswith("no permission to execute the command or subcommand")
        assert r[1] is None
        u.close()
    finally:
        admin.cmd("ACL", "DELUSER", "txuser")
        admin.close()


def test_scripts_cannot_write_write_through_keys(cached):
    srv, path = cached
    c = srv.conn()
    r = c.cmd("EVAL", "return redis.call('SET', KEYS[1], '5')", "1", "counter:8")
    assert isinstance(r, Error) and "write-through or write-behind key" in str(r)
    r = c.cmd("EVAL", "return redis.pcall('SET', KEYS[1], '5')", "1", "counter:8")
    assert isinstance(r, Error) and "write-through or write-behind key" in str(r)
    assert c.cmd("EXISTS", "counter:8") == 0
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM counters").fetchone()[0] == 0
    db.close()
