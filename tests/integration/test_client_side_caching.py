"""Client-side caching (CLIENT TRACKING) over real sockets.

node-redis 5's client-side cache (RESP3, `clientSideCache`) serves a
repeated read locally and drops it when another client writes the key, and
when the row behind a caching rule's key changes in the database (SQLite:
the key's TTL runs out and its expiry invalidates; PostgreSQL: the LISTEN
invalidation). Raw RESP tests cover tracking across shards (keys of every
shard of --threads 3, clients on every thread), REDIRECT to a RESP2
subscriber, BCAST with prefixes, OPTIN/OPTOUT, NOLOOP, FLUSHALL's null
invalidation, expiry, tracking-table-max-keys and INFO.

redis-py's client-side cache (redis-py 5.1+; Debian 12 has 4.3.4, PyPI is not
reachable) runs the same scenario with Debian 13's python3-redis 6.1, which
scripts/deps.sh unpacks into .deps/redis-py: the client script runs in its
own process with that directory on PYTHONPATH.

LARDER_TEST_TARGET=redis runs the raw tests against Debian's redis-server:
they must pass there first, which is how we know the tests are right."""
import json
import os
import sqlite3
import subprocess
import time

import pytest

import node_client
import postgres
from resp import Push
from server import start_larder, start_target, wait_until
from slots import shard_of

SHARDS = 3


def keys_on_each_shard(prefix, shards=SHARDS):
    """One key name starting with `prefix` for each shard."""
    out, i = {}, 0
    while len(out) < shards:
        name = f"{prefix}{i}"
        out.setdefault(shard_of(name, shards), name)
        i += 1
    return [out[s] for s in range(shards)]


@pytest.fixture(scope="module")
def srv():
    s = start_target(threads=SHARDS)
    yield s
    s.stop()


@pytest.fixture
def conns(srv):
    made = []

    def make(resp3=False):
        c = srv.conn()
        if resp3:
            c.cmd("HELLO", "3")
        made.append(c)
        return c

    first = make()
    first.cmd("FLUSHALL")
    first.cmd("CONFIG", "SET", "tracking-table-max-keys", "1000000")
    yield make
    for c in made:
        c.close()


def read_push(c):
    """The next frame of `c` must be a push; returns it as a list."""
    m = c.read()
    assert isinstance(m, Push), m
    return list(m)


def assert_quiet(c):
    """No frame is waiting for `c`: a PING is answered next."""
    assert c.cmd("PING") == "PONG"


def test_resp3_invalidation_across_shards(conns):
    # Enough connections that some land on every thread (SO_REUSEPORT).
    readers = [conns(resp3=True) for _ in range(6)]
    writer = conns()
    keys = keys_on_each_shard("csc:")
    for k in keys:
        writer.cmd("SET", k, "1")
    for r in readers:
        assert r.cmd("CLIENT", "TRACKING", "on") == "OK"
        assert r.cmd("MGET", *keys) == [b"1"] * len(keys)
    for k in keys:
        writer.cmd("SET", k, "2")
        for r in readers:
            assert read_push(r) == [b"invalidate", [k.encode()]]
    # Entries are dropped once sent: a second write sends nothing.
    writer.cmd("SET", keys[0], "3")
    for r in readers:
        assert_quiet(r)
    # Reading again tracks again (a single-key read on each shard).
    r = readers[0]
    for k in keys:
        r.cmd("GET", k)
    writer.cmd("DEL", *keys)
    got = sorted(read_push(r)[1][0] for _ in keys)
    assert got == sorted(k.encode() for k in keys)


def test_own_write_is_sent_after_the_reply_and_noloop_skips_it(conns):
    r = conns(resp3=True)
    keys = keys_on_each_shard("own:")
    r.cmd("CLIENT", "TRACKING", "on")
    for k in keys:
        r.cmd("SET", k, "1")
        r.cmd("GET", k)
        assert r.cmd("INCR", k) == 2  # the reply first, then the push
        assert read_push(r) == [b"invalidate", [k.encode()]]
    r.cmd("CLIENT", "TRACKING", "off")
    assert r.cmd("CLIENT", "TRACKING", "on", "NOLOOP") == "OK"
    other = conns()
    for k in keys:
        r.cmd("GET", k)
        r.cmd("INCR", k)
    assert_quiet(r)
    for k in keys:
        r.cmd("GET", k)
        other.cmd("INCR", k)
        assert read_push(r) == [b"invalidate", [k.encode()]]


def test_redirect_to_a_resp2_subscriber(conns):
    sub = conns()
    sub_id = sub.cmd("CLIENT", "ID")
    sub.send_raw(b"*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n")
    assert sub.read() == [b"subscribe", b"__redis__:invalidate", 1]
    t = conns()  # RESP2: only the redirect can carry its invalidations
    assert t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", str(sub_id)) == "OK"
    assert t.cmd("CLIENT", "GETREDIR") == sub_id
    writer = conns()
    for k in keys_on_each_shard("redir:"):
        writer.cmd("SET", k, "1")
        t.cmd("GET", k)
        writer.cmd("SET", k, "2")
        assert sub.read() == [b"message", b"__redis__:invalidate", [k.encode()]]
    # FLUSHALL: a null instead of the keys.
    t.cmd("GET", "redir:x")
    writer.cmd("FLUSHALL")
    assert sub.read() == [b"message", b"__redis__:invalidate", None]
    # The target goes: the tracking client is flagged (a RESP3 one gets a push).
    t.cmd("HELLO", "3")
    t.cmd("GET", "redir:y")
    sub.close()
    assert wait_until(lambda: f"id={sub_id} " not in writer.cmd("CLIENT", "LIST").decode())
    writer.cmd("SET", "redir:y", "1")
    assert read_push(t) == [b"tracking-redir-broken", sub_id]
    assert "flags=tR" in str(t.cmd("CLIENT", "INFO"))


def test_bcast_prefixes(conns):
    b = conns(resp3=True)
    assert b.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:", "PREFIX", "b:") == "OK"
    writer = conns()
    # Keys of every shard in one command: one message per prefix.
    a_keys, b_keys = keys_on_each_shard("a:"), keys_on_each_shard("b:")
    args = []
    for k in a_keys + b_keys + ["c:1"]:
        args += [k, "1"]
    # An MSET across shards is one command: one message per prefix.
    writer.cmd("MSET", *args)
    got = [read_push(b), read_push(b)]
    got.sort()
    assert sorted(got[0][1] + got[1][1]) == sorted(k.encode() for k in a_keys + b_keys)
    for m in got:
        assert m[1] == sorted(m[1])
    assert_quiet(b)
    writer.cmd("SET", "c:2", "1")  # no prefix of b's
    assert_quiet(b)
    err = b.cmd("CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a")
    assert "overlaps with an existing prefix 'a:'" in str(err)
    assert "flags=tB" in str(b.cmd("CLIENT", "INFO"))
    assert b"tracking_total_prefixes:2" in writer.cmd("INFO", "stats")


def test_optin_optout(conns):
    writer = conns()
    writer.cmd("MSET", "o:1", "1", "o:2", "1")
    i = conns(resp3=True)
    assert i.cmd("CLIENT", "TRACKING", "on", "OPTIN") == "OK"
    i.cmd("GET", "o:1")  # not tracked
    assert i.cmd("CLIENT", "CACHING", "yes") == "OK"
    i.cmd("GET", "o:2")  # tracked
    writer.cmd("INCR", "o:1")
    writer.cmd("INCR", "o:2")
    assert read_push(i) == [b"invalidate", [b"o:2"]]
    assert_quiet(i)
    o = conns(resp3=True)
    assert o.cmd("CLIENT", "TRACKING", "on", "OPTOUT") == "OK"
    assert o.cmd("CLIENT", "CACHING", "no") == "OK"
    o.cmd("GET", "o:1")  # not tracked
    o.cmd("GET", "o:2")  # tracked
    writer.cmd("INCR", "o:1")
    writer.cmd("INCR", "o:2")
    assert read_push(o) == [b"invalidate", [b"o:2"]]
    assert_quiet(o)


def test_expiry_and_flush_invalidate(conns):
    r = conns(resp3=True)
    writer = conns()
    r.cmd("CLIENT", "TRACKING", "on")
    for k in keys_on_each_shard("exp:"):
        writer.cmd("SET", k, "1", "PX", "50")
        r.cmd("GET", k)
        # The active expiry cycle deletes it: the reader is told.
        assert read_push(r) == [b"invalidate", [k.encode()]]
    r.cmd("GET", "exp:x")
    writer.cmd("FLUSHALL")
    assert read_push(r) == [b"invalidate", None]


def test_tracking_table_max_keys_and_info(conns):
    sub = conns()
    sub_id = sub.cmd("CLIENT", "ID")
    sub.cmd("HELLO", "3")
    t = conns()
    t.cmd("CLIENT", "TRACKING", "on", "REDIRECT", str(sub_id))
    keys = [f"max:{i}" for i in range(60)]
    for k in keys:
        t.cmd("GET", k)
    stats = t.cmd("INFO", "stats").decode()
    assert "tracking_total_keys:60" in stats and "tracking_total_items:60" in stats
    assert "tracking_clients:1" in t.cmd("INFO", "clients").decode()
    t.cmd("CONFIG", "SET", "tracking-table-max-keys", "10")
    # Exactly the excess is evicted, each key with an invalidation.
    got = [read_push(sub)[1][0] for _ in range(50)]
    assert len(set(got)) == 50 and set(got) <= {k.encode() for k in keys}
    assert wait_until(lambda: "tracking_total_keys:10" in t.cmd("INFO", "stats").decode())
    assert_quiet(sub)


# ---- node-redis 5's client-side cache ----

REDIS_PY6 = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         ".deps", "redis-py")
PY_CLIENT = os.path.join(os.path.dirname(node_client.NODE_DIR), "python", "client_side_cache.py")


def run_cache_client(srv, rule_key, new_value, change, client="node"):
    """Runs a client-side-cache client (node-redis 5, or redis-py 6 with
    client="python") through its two phases, `change` in between."""
    if client == "python":
        if not os.path.isdir(os.path.join(REDIS_PY6, "redis")):
            pytest.skip("redis-py 6 is not in .deps/redis-py: run scripts/deps.sh test")
        cmd, cwd = ["/usr/bin/python3", PY_CLIENT], os.path.dirname(PY_CLIENT)
        env = dict(os.environ, PYTHONPATH=REDIS_PY6)
    else:
        node_client.require_package("redis")
        cmd, cwd = ["node", os.path.join(node_client.NODE_DIR, "client_side_cache.js")], node_client.NODE_DIR
        env = None
    p = subprocess.Popen([*cmd, str(srv.port), rule_key, new_value], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    try:
        first = p.stdout.readline()
        assert first, p.stderr.read()
        out = json.loads(first)
        change()
        p.stdin.write("changed\n")
        p.stdin.flush()
        rest, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        return out, json.loads(rest.strip().splitlines()[-1])
    finally:
        if p.poll() is None:
            p.kill()


def check_cache(before, after, old, new):
    # The second read came from the local cache: one GET reached the server.
    assert before["first"] == before["second"] == "v1"
    # (node-redis counts its hits; redis-py keeps no count: None.)
    assert before["server_gets"] == 1 and before["hits"] in (1, None)
    # Another client's write reached the cache as an invalidation.
    assert before["after_write"] == "v2"
    assert before["rule_first"] == before["rule_second"] == old
    assert before["rule_server_gets"] == 1 and before["rule_hits"] in (1, None)
    # The database's change reached the cache too.
    assert after["rule_after_update"] == new


def test_node_redis_client_side_cache_sqlite(tmp_path):
    # SQLite sends no change notices: the key's TTL ends, its expiry
    # invalidates the client's copy and the next read loads the row.
    srv, change = sqlite_rule_server(tmp_path)
    try:
        before, after = run_cache_client(srv, "name:5", "renamed", change)
        check_cache(before, after, "user 5", "renamed")
    finally:
        srv.stop()


def sqlite_rule_server(tmp_path):
    """A server with a caching rule over a SQLite table, and the change the
    tests make directly in the database."""
    path = tmp_path / "shop.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO users VALUES (5, 'user 5')")
    db.commit()
    db.close()
    conf = (f"cache-source demo sqlite:{path}\n"
            'cache-rule name:<id> source demo as string ttl 2s load "SELECT name FROM users WHERE id = :id"\n')

    def change():
        c = sqlite3.connect(path)
        c.execute("UPDATE users SET name = 'renamed' WHERE id = 5")
        c.commit()
        c.close()
    return start_larder(threads=2, config_text=conf), change


def test_redis_py_client_side_cache_sqlite(tmp_path):
    """redis-py's own cache: a repeated read is served locally (one GET
    reaches the server), another client's write drops it, and so does an
    UPDATE of the rule's row made directly in the database."""
    srv, change = sqlite_rule_server(tmp_path)
    try:
        before, after = run_cache_client(srv, "name:5", "renamed", change, client="python")
        assert before["version"].split(".")[0] >= "5"
        assert before["cached_entries"] >= 1
        check_cache(before, after, "user 5", "renamed")
    finally:
        srv.stop()


def postgres_rule_case(client):
    """A rule over a PostgreSQL table whose trigger NOTIFYs Larder; the
    client's cache must drop the key when the row is UPDATEd directly (TTL
    1h: nothing but the LISTEN invalidation would)."""
    pg = postgres.Postgres()
    here = os.path.dirname(os.path.abspath(__file__))
    pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (5, 'user 5');")
    pg.sql(open(os.path.join(here, "..", "..", "examples", "postgres", "invalidate.sql")).read())
    pg.sql("CREATE TRIGGER users_larder AFTER INSERT OR UPDATE OR DELETE ON users "
           "FOR EACH ROW EXECUTE FUNCTION larder_notify('name:', 'id');")
    conf = (f"cache-source demo {pg.uri}\n"
            'cache-rule name:<id> source demo as string ttl 1h load "SELECT name FROM users WHERE id = :id::int"\n')
    srv = start_larder(threads=2, config_text=conf)
    try:
        time.sleep(0.3)  # the listener is connected
        before, after = run_cache_client(srv, "name:5", "renamed",
                                         lambda: pg.sql("UPDATE users SET name = 'renamed' WHERE id = 5"),
                                         client=client)
        check_cache(before, after, "user 5", "renamed")
        print(f"database UPDATE reached {client}'s local cache in {after['update_ms']} ms")
    finally:
        srv.stop()
        pg.stop()


@pytest.mark.skipif(not postgres.available(), reason="PostgreSQL not installed")
def test_redis_py_client_side_cache_postgres():
    postgres_rule_case("python")


@pytest.mark.skipif(not postgres.available(), reason="PostgreSQL not installed")
def test_node_redis_client_side_cache_postgres():
    postgres_rule_case("node")
