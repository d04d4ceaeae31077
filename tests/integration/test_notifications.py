"""Keyspace notifications that no scripted comparison can show: keys that
expire (lazily and in the active cycle), hash fields that expire, keys the
eviction removes, and the caching rules' own events (class `c`) with the
rules' publish-channel / publish-stream messages. A subscriber on another
connection (and so, with two shards, often another thread) reads them."""
import json
import os
import sqlite3
import tempfile
import time

import pytest

import postgres

from resp import Push
from server import start_larder, wait_until


def messages(conn, n, timeout=10, partial=False):
    """The next n published messages as (channel, message) pairs; pmessage
    frames drop their pattern. `partial`: those that came within `timeout`."""
    conn.sock.settimeout(timeout)
    out = []
    try:
        while len(out) < n:
            frame = conn.read()
            kind = frame[0]
            if kind == b"message":
                out.append((frame[1], frame[2]))
            elif kind == b"pmessage":
                out.append((frame[2], frame[3]))
    except OSError:
        if not partial:
            raise
    finally:
        conn.sock.settimeout(30)
    return out


def subscribe(srv, *patterns):
    sub = srv.conn()
    sub.send_raw(b"".join(f"*2\r\n$10\r\nPSUBSCRIBE\r\n${len(p)}\r\n{p}\r\n".encode() for p in patterns))
    for _ in patterns:
        assert sub.read()[0] == b"psubscribe"
    return sub


@pytest.fixture
def srv():
    s = start_larder(threads=2)
    yield s
    s.stop()


def test_expired_keys_are_announced(srv):
    c = srv.conn()
    assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "Ex") == "OK"
    sub = subscribe(srv, "__keyevent@*__:expired")
    # The active cycle finds this one by itself.
    assert c.cmd("SET", "soon", "1", "PX", "30") == "OK"
    assert messages(sub, 1) == [(b"__keyevent@0__:expired", b"soon")]
    # This one a read finds first (or the cycle, whichever comes first):
    # one event either way, then the read misses.
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("SET", "lazy", "1", "PX", "1") == "OK"
    assert wait_until(lambda: c.cmd("GET", "lazy") is None, timeout=10)
    assert messages(sub, 1) == [(b"__keyevent@3__:expired", b"lazy")]
    assert c.cmd("GET", "lazy") is None
    sub.sock.settimeout(0.3)
    with pytest.raises(OSError):
        sub.read()


def test_keymiss_after_lazy_expiry_comes_second(srv):
    c = srv.conn()
    assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "Kxm") == "OK"
    assert c.cmd("CONFIG", "SET", "hz", "1") == "OK"  # the active cycle rarely runs
    sub = subscribe(srv, "__keyspace@0__:gone")
    assert c.cmd("SET", "gone", "1", "PX", "20") == "OK"
    time.sleep(0.05)  # (setup only: the key must be past its TTL when read)
    assert c.cmd("GET", "gone") is None
    got = messages(sub, 2)
    # Expired first; the miss only when the read found it (not the cycle).
    assert got[0] == (b"__keyspace@0__:gone", b"expired")
    assert got[1] == (b"__keyspace@0__:gone", b"keymiss")


def test_hash_fields_that_expire_are_announced(srv):
    c = srv.conn()
    assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "Khg") == "OK"
    sub = subscribe(srv, "__keyspace@0__:h")
    assert c.cmd("HSET", "h", "a", "1", "b", "2") == 2
    assert c.cmd("HPEXPIRE", "h", "30", "FIELDS", "1", "a") == [1]
    assert messages(sub, 2) == [(b"__keyspace@0__:h", b"hset"), (b"__keyspace@0__:h", b"hexpire")]
    assert messages(sub, 1) == [(b"__keyspace@0__:h", b"hexpired")]
    assert c.cmd("HPEXPIRE", "h", "30", "FIELDS", "1", "b") == [1]
    assert messages(sub, 3) == [(b"__keyspace@0__:h", b"hexpire"), (b"__keyspace@0__:h", b"hexpired"),
                                (b"__keyspace@0__:h", b"del")]


def test_evicted_keys_are_announced(srv):
    c = srv.conn()
    assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "Ee") == "OK"
    sub = subscribe(srv, "__keyevent@0__:evicted")
    assert c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == "OK"
    used = int(dict(l.split(":", 1) for l in c.cmd("INFO", "memory").decode().split("\r\n")
                    if ":" in l)["used_memory"])
    assert c.cmd("CONFIG", "SET", "maxmemory", str(used + 2 * 1024 * 1024)) == "OK"
    value = "x" * 1000
    for i in range(0, 8000, 500):
        c.pipeline([("SET", f"k{j}", value) for j in range(i, i + 500)])
    got = messages(sub, 10)
    assert all(ch == b"__keyevent@0__:evicted" and key.startswith(b"k") for ch, key in got)
    evicted = {key for _, key in got}
    assert all(c.cmd("EXISTS", key) == 0 for key in evicted)
    assert c.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"


def test_notifications_off_publish_nothing(srv):
    c = srv.conn()
    sub = subscribe(srv, "__key*__:*")
    assert c.cmd("SET", "a", "1", "PX", "10") == "OK"
    assert c.cmd("DEL", "a") in (0, 1)
    assert c.cmd("GET", "nosuch") is None
    assert c.cmd("PUBLISH", "__keyspace@0__:marker", "m") == 1
    assert messages(sub, 1) == [(b"__keyspace@0__:marker", b"m")]


# ---- Caching rules ----

def sqlite_source():
    d = tempfile.mkdtemp(prefix="larder-notify-")
    path = os.path.join(d, "db.sqlite")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
        INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
    """)
    db.commit()
    db.close()
    return path


UPSERT = "INSERT INTO items (id, v) VALUES (:id, :value) ON CONFLICT (id) DO UPDATE SET v = excluded.v"


@pytest.fixture
def cached():
    path = sqlite_source()
    text = (f"cache-source db sqlite:{path}\n"
            "cache-rule user:<id> source db as string ttl 1s grace 60s publish-channel user-changes "
            "load \"SELECT name FROM users WHERE id = :id\"\n"
            f"cache-rule item:<id> source db as string ttl 1h write through publish-channel item-changes "
            f"store \"{UPSERT}\" delete \"DELETE FROM items WHERE id = :id\" "
            "load \"SELECT v FROM items WHERE id = :id\"\n"
            f"cache-rule wb:<id> source db as string ttl 1h write behind write-delay 20ms "
            f"publish-channel wb-changes publish-stream wb-log store \"{UPSERT}\" "
            "load \"SELECT v FROM items WHERE id = :id\"\n")
    s = start_larder(threads=2, config_text=text)
    yield s, path
    s.stop()


def test_rule_events_and_publish_channel(cached):
    srv, path = cached
    c = srv.conn()
    assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "Kc") == "OK"
    assert c.cmd("CONFIG", "GET", "notify-keyspace-events") == [b"notify-keyspace-events", b"Kc"]
    sub = subscribe(srv, "user-changes", "item-changes", "wb-changes", "__keyspace@0__:*")
    # Read-through: the load is announced on the keyspace channel (class c)
    # and on the rule's channel as JSON.
    assert c.cmd("GET", "user:1") == b"ann"
    got = messages(sub, 2)
    assert (b"__keyspace@0__:user:1", b"cache-loaded") in got
    msg = dict(got)[b"user-changes"]
    assert json.loads(msg) == {"event": "cache-loaded", "key": "user:1", "db": 0}
    # Past its TTL (inside grace) a read serves the old value and reloads it.
    db = sqlite3.connect(path)
    db.execute("UPDATE users SET name = 'anna' WHERE id = 1")
    db.commit()
    db.close()
    assert wait_until(lambda: c.cmd("GET", "user:1") == b"anna", timeout=15)
    got = messages(sub, 2)
    assert json.loads(dict(got)[b"user-changes"])["event"] == "cache-refreshed"
    assert (b"__keyspace@0__:user:1", b"cache-refreshed") in got
    # Write-through: once the database has it.
    assert c.cmd("SET", "item:7", "seven") == "OK"
    got = messages(sub, 2)
    assert json.loads(dict(got)[b"item-changes"]) == {"event": "cache-written", "key": "item:7", "db": 0}
    assert sqlite3.connect(path).execute("SELECT v FROM items WHERE id = 7").fetchall() == [("seven",)]
    # Write-behind: when the flusher wrote it.
    assert c.cmd("SET", "wb:8", "eight") == "OK"
    got = messages(sub, 2)
    assert json.loads(dict(got)[b"wb-changes"]) == {"event": "cache-written", "key": "wb:8", "db": 0}
    assert sqlite3.connect(path).execute("SELECT v FROM items WHERE id = 8").fetchall() == [("eight",)]
    # A key no rule covers announces nothing of class c.
    assert c.cmd("SET", "plain", "1") == "OK"
    sub.sock.settimeout(0.3)
    with pytest.raises(OSError):
        sub.read()


def test_rule_options_round_trip(cached):
    srv, _ = cached
    c = srv.conn()
    rules = c.cmd("CACHE", "RULES")
    text = repr(rules)
    assert "publish-channel user-changes" in text
    assert "publish-channel wb-changes publish-stream wb-log" in text


def test_publish_stream_when_the_server_has_xadd(cached):
    srv, _ = cached
    c = srv.conn()
    if c.cmd("COMMAND", "INFO", "xadd") == [None]:
        pytest.skip("this build has no XADD: publish-stream drops its messages")
    assert c.cmd("SET", "wb:9", "nine") == "OK"
    assert wait_until(lambda: c.cmd("XLEN", "wb-log") == 1, timeout=10)
    entry = c.cmd("XRANGE", "wb-log", "-", "+")[0][1]
    assert dict(zip(entry[::2], entry[1::2])) == {b"event": b"cache-written", b"key": b"wb:9", b"db": b"0"}


@pytest.mark.skipif(not postgres.available(), reason="PostgreSQL not installed")
def test_invalidation_from_postgres_is_announced():
    pg = postgres.Postgres()
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'ann');")
        pg.sql(open(os.path.join(here, "..", "..", "examples", "postgres", "invalidate.sql")).read())
        pg.sql("CREATE TRIGGER users_larder AFTER INSERT OR UPDATE OR DELETE ON users "
               "FOR EACH ROW EXECUTE FUNCTION larder_notify('user:', 'id');")
        text = (f"cache-source db {pg.uri}\n"
                "cache-rule user:<id> source db as string ttl 1h publish-channel user-changes "
                "load \"SELECT name FROM users WHERE id = :id::int\"\n")
        srv = start_larder(threads=2, config_text=text)
        try:
            c = srv.conn()
            assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "Ec") == "OK"
            sub = subscribe(srv, "user-changes", "__keyevent@0__:cache-*")
            assert c.cmd("GET", "user:1") == b"ann"
            got = messages(sub, 2)
            assert (b"__keyevent@0__:cache-loaded", b"user:1") in got
            # The listener connects in the background: update until the
            # invalidation arrives (each update sends one).
            deadline = time.time() + 20
            got = []
            while time.time() < deadline and len(got) < 2:
                if not got:
                    pg.sql("UPDATE users SET name = 'anna' WHERE id = 1")
                got += messages(sub, 2 - len(got), timeout=0.5, partial=True)
            assert (b"__keyevent@0__:cache-invalidated", b"user:1") in got
            assert json.loads(dict(got)[b"user-changes"]) == {"event": "cache-invalidated", "key": "user:1", "db": 0}
            assert c.cmd("GET", "user:1") == b"anna"
        finally:
            srv.stop()
    finally:
        pg.stop()
