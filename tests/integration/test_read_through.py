"""Read-through from SQLite: rules load missing keys on read, once however
many clients ask, remember missing rows, spread TTLs, keep pipeline order,
and can be changed at runtime."""
import os
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from resp import Conn, Error
from server import larder_bin, start_larder

# ~0.2 s of work inside SQLite (no sleep function there): a recursive count.
SLOW = "(SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT x FROM c)) > 0"


def make_db(path):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, plan TEXT, referrer TEXT);
        CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price_cents INTEGER);
    """)
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                   [(i, f"user {i}", f"u{i}@example.com", "pro" if i % 2 else "free",
                     None if i % 3 else f"ref{i}") for i in range(1, 3001)])
    db.executemany("INSERT INTO products VALUES (?, ?, ?)", [(i, f"product {i}", 100 * i) for i in range(1, 51)])
    db.commit()
    db.close()


def config(db_path, extra=""):
    return f"""
cache-source demo sqlite:{db_path}
cache-rule user:<id> source demo as hash ttl 100s jitter 20 negative-ttl 1s load "SELECT name, email, plan, referrer FROM users WHERE id = :id"
cache-rule user:<id>:plan source demo as string ttl 100s load "SELECT plan FROM users WHERE id = :id"
cache-rule product:<id> source demo as json ttl 1h load "SELECT id, name, price_cents FROM products WHERE id = :id"
cache-rule slow:<id> source demo as hash ttl 1h max-loads 4 load "SELECT name FROM users WHERE id = :id AND {SLOW}"
cache-rule broken:<id> source demo load "SELECT missing_column FROM no_such_table WHERE id = :id"
{extra}
"""


@pytest.fixture
def shop():
    d = tempfile.mkdtemp(prefix="larder-rt-")
    path = os.path.join(d, "shop.db")
    make_db(path)
    srv = start_larder(threads=2, config_text=config(path))
    yield srv, path
    srv.stop()


def info_fields(c, section="cache"):
    text = c.cmd("INFO", section)
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def rule_stats(c, pattern):
    for k, v in info_fields(c).items():
        if k.startswith("rule") and f"pattern={pattern}," in v:
            return dict(kv.split("=", 1) for kv in v.split(","))
    raise AssertionError(f"no rule {pattern} in INFO cache")


def test_values_as_hash_string_and_json(shop):
    srv, _ = shop
    c = srv.conn()
    h = c.cmd("HGETALL", "user:3")
    assert dict(zip(h[::2], h[1::2])) == {b"name": b"user 3", b"email": b"u3@example.com", b"plan": b"pro",
                                            b"referrer": b"ref3"}
    h = c.cmd("HGETALL", "user:4")  # referrer is NULL: left out
    assert b"referrer" not in h[::2] and len(h) == 6
    assert c.cmd("HGET", "user:5", "plan") == b"pro"
    assert c.cmd("GET", "user:6:plan") == b"free"
    assert c.cmd("GET", "product:2") == b'{"id":"2","name":"product 2","price_cents":"200"}'
    assert c.cmd("TYPE", "user:3") == "hash"
    assert 75 <= c.cmd("TTL", "user:3") <= 120
    assert c.cmd("EXISTS", "user:7") == 1
    assert c.cmd("DBSIZE") == 6
    # Keys that match no rule behave as in Redis.
    assert c.cmd("GET", "nobody") is None
    assert c.cmd("HGETALL", "users:1") == []


def test_missing_rows_are_cached_as_misses(shop):
    srv, path = shop
    c = srv.conn()
    assert c.cmd("HGETALL", "user:5000") == []
    assert c.cmd("EXISTS", "user:5000") == 0
    assert c.cmd("HGET", "user:5000", "name") is None
    st = rule_stats(c, "user:<id>")
    assert int(st["negative_hits"]) >= 2
    loads = int(st["loads"])
    # The row appears; within the negative TTL (1 s) the miss is remembered,
    # after it the next read loads the row.
    db = sqlite3.connect(path)
    db.execute("INSERT INTO users VALUES (5000, 'late', 'l@example.com', 'pro', NULL)")
    db.commit()
    db.close()
    deadline = time.time() + 20
    while time.time() < deadline:
        if c.cmd("HGET", "user:5000", "name") == b"late":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the new row was never loaded")
    assert int(rule_stats(c, "user:<id>")["loads"]) == loads + 1


def test_concurrent_misses_share_one_load(shop):
    srv, _ = shop
    n = 200
    conns = [srv.conn(timeout=60) for _ in range(n)]
    results = [None] * n
    barrier = threading.Barrier(n)

    def reader(i):
        barrier.wait()
        results[i] = conns[i].cmd("HGET", "slow:11", "name")

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [b"user 11"] * n
    st = rule_stats(conns[0], "slow:<id>")
    assert int(st["loads"]) == 1, st
    assert int(st["misses"]) + int(st["coalesced"]) == n, st
    for c in conns:
        c.close()


def test_ttl_jitter_spreads_expiry(shop):
    srv, _ = shop
    c = srv.conn()
    n = 2000
    c.pipeline([("HGET", f"user:{i}", "name") for i in range(1, n + 1)])
    ttls = c.pipeline([("PTTL", f"user:{i}") for i in range(1, n + 1)])
    # ttl 100 s, jitter 20%: 80 s to 120 s, spread over the range.
    assert min(ttls) >= 79_000 and max(ttls) <= 120_500, (min(ttls), max(ttls))
    assert min(ttls) < 85_000 and max(ttls) > 115_000, (min(ttls), max(ttls))
    buckets = [0] * 8
    for t in ttls:
        buckets[min(7, max(0, int((t - 80_000) / 5_000)))] += 1
    assert min(buckets) > n / 8 / 3, buckets  # no part of the range left empty


def test_pipelines_keep_their_order(shop):
    srv, _ = shop
    c = srv.conn()
    cmds = [("SET", "a", "1"), ("HGET", "user:21", "name"), ("GET", "a"), ("HGET", "slow:22", "name"),
            ("GET", "user:23:plan"), ("HGET", "user:9999", "name"), ("INCR", "a"), ("PING",)]
    assert c.pipeline(cmds) == ["OK", b"user 21", b"1", b"user 22", b"pro", None, 2, "PONG"]
    # Many clients, many keys, deep pipelines.
    errors = []

    def worker(w):
        try:
            cc = srv.conn(timeout=60)
            for rnd in range(5):
                ids = [(w * 97 + rnd * 13 + k) % 2900 + 1 for k in range(50)]
                replies = cc.pipeline([("HGET", f"user:{i}", "name") for i in ids])
                if replies != [f"user {i}".encode() for i in ids]:
                    errors.append((w, rnd))
            cc.close()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_load_errors_name_the_source(shop):
    srv, _ = shop
    c = srv.conn()
    r = c.cmd("GET", "broken:1")
    assert isinstance(r, Error)
    assert "cache source 'demo'" in str(r) and "no_such_table" in str(r)
    assert int(rule_stats(c, "broken:<id>")["load_errors"]) == 1
    assert c.cmd("PING") == "PONG"


def test_rules_change_at_runtime_and_survive_rewrite(shop):
    srv, _ = shop
    c = srv.conn()
    assert len(c.cmd("CACHE", "RULES")) == 5
    assert c.cmd("CACHE", "RULE", "ADD", "name:<id>", "source", "demo", "as", "string", "load",
                 "SELECT name FROM users WHERE id = :id") == "OK"
    assert c.cmd("GET", "name:8") == b"user 8"
    r = c.cmd("CACHE", "RULE", "ADD", "x:<id>", "source", "nope", "load", "SELECT 1")
    assert isinstance(r, Error) and "unknown cache source 'nope'" in str(r)
    r = c.cmd("CACHE", "RULE", "ADD", "x:<id>", "source", "demo", "load", "SELECT :other")
    assert isinstance(r, Error) and ":other" in str(r)
    assert c.cmd("CACHE", "RULE", "DEL", "broken:<id>") == 1
    assert c.cmd("CACHE", "RULE", "DEL", "broken:<id>") == 0
    assert c.cmd("GET", "broken:1") is None  # no rule any more: a plain miss
    assert c.cmd("CONFIG", "REWRITE") == "OK"
    text = open(srv.config_path).read()
    assert 'cache-rule name:<id> source demo as string' in text
    assert "broken:<id>" not in text
    assert [s[0] for s in c.cmd("CACHE", "SOURCES")] == [b"demo"]


def test_invalid_rule_stops_startup(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("port 0\ncache-source demo sqlite:/nonexistent.db\n"
                   "cache-rule user:<id> source demo ttl soon load \"SELECT 1\"\n")
    p = subprocess.run([larder_bin(), str(bad)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "at line 3" in out and "ttl" in out
    bad.write_text("cache-rule user:<id> source nowhere load \"SELECT 1\"\n")
    p = subprocess.run([larder_bin(), str(bad)], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "unknown cache source 'nowhere'" in p.stdout + p.stderr
