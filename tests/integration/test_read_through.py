"""Read-through: rules load missing keys on read, once however many clients
ask, remember missing rows, spread TTLs, keep pipeline order, and can be
changed at runtime. Every test runs against SQLite and against a real
PostgreSQL (a throw-away cluster, see tests/lib/postgres.py); the last ones
need PostgreSQL's own counting (pg_sleep, a load log) and stopping it."""
import os
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

import postgres
from resp import Error
from server import larder_bin, start_larder

# ~0.2 s of work inside SQLite (it has no sleep function): a recursive count.
SQLITE_SLOW = ("SELECT name FROM users WHERE id = :id AND (SELECT count(*) FROM (WITH RECURSIVE c(x) AS "
               "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT x FROM c)) > 0")
# In PostgreSQL the slow load also logs itself (RAISE LOG), so the database
# counts loads.
PG_SLOW = "SELECT name FROM slow_name(:id::int)"


WRITE_TABLES = """
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL CHECK (balance >= 0));
    CREATE TABLE counters (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
"""


class SqliteShop:
    kind = "sqlite"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="larder-rt-")
        self.path = os.path.join(self.dir, "shop.db")
        self.uri = f"sqlite:{self.path}"
        self.slow_sql = SQLITE_SLOW
        db = sqlite3.connect(self.path)
        db.executescript("""
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, plan TEXT, referrer TEXT);
            CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price_cents INTEGER);
        """)
        db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?)",
                       [(i, f"user {i}", f"u{i}@example.com", "pro" if i % 2 else "free",
                         None if i % 3 else f"ref{i}") for i in range(1, 12001)])
        db.executemany("INSERT INTO products VALUES (?, ?, ?)", [(i, f"product {i}", 100 * i) for i in range(1, 51)])
        db.executescript(WRITE_TABLES)
        db.commit()
        db.close()

    def execute(self, sql):
        db = sqlite3.connect(self.path)
        db.execute(sql)
        db.commit()
        db.close()

    def query(self, sql):
        db = sqlite3.connect(self.path)
        rows = db.execute(sql).fetchall()
        db.close()
        return rows

    def stop(self):
        pass


class PostgresShop:
    kind = "postgres"

    def __init__(self):
        self.pg = postgres.Postgres()
        self.uri = self.pg.uri
        self.slow_sql = PG_SLOW
        self.pg.sql("""
            CREATE TABLE users (id int PRIMARY KEY, name text, email text, plan text, referrer text);
            INSERT INTO users SELECT i, 'user ' || i, 'u' || i || '@example.com',
                   CASE WHEN i % 2 = 1 THEN 'pro' ELSE 'free' END, CASE WHEN i % 3 = 0 THEN 'ref' || i END
              FROM generate_series(1, 12000) i;
            CREATE TABLE products (id int PRIMARY KEY, name text, price_cents int);
            INSERT INTO products SELECT i, 'product ' || i, 100 * i FROM generate_series(1, 50) i;
        """ + WRITE_TABLES + """
            CREATE FUNCTION slow_name(uid int) RETURNS TABLE(name text) LANGUAGE plpgsql AS $$
            BEGIN
              -- Loads run in read-only transactions (docs/security.md): the
              -- function counts itself in the server's log, not in a table.
              RAISE LOG 'larder-test-load %', uid;
              PERFORM pg_sleep(0.2);
              RETURN QUERY SELECT u.name FROM users u WHERE u.id = uid;
            END $$;
        """)

    def execute(self, sql):
        self.pg.sql(sql)

    def query(self, sql):
        out = self.pg.sql(sql)
        return [tuple(int(x) if x.lstrip("-").isdigit() else x for x in line.split("|"))
                for line in out.splitlines() if line]

    def loads_logged(self, uid):
        with open(os.path.join(self.pg.dir, "log")) as f:
            return sum(1 for line in f if line.rstrip().endswith(f"larder-test-load {uid}"))

    def stop(self):
        self.pg.stop()


def config(db, extra=""):
    return f"""
cache-source demo {db.uri}
cache-rule user:<id> source demo as hash ttl 100s jitter 20 negative-ttl 1s load "SELECT name, email, plan, referrer FROM users WHERE id = :id"
cache-rule user:<id>:plan source demo as string ttl 100s load "SELECT plan FROM users WHERE id = :id"
cache-rule product:<id> source demo as json ttl 1h load "SELECT id, name, price_cents FROM products WHERE id = :id"
cache-rule slow:<id> source demo as hash ttl 1h max-loads 4 load "{db.slow_sql}"
cache-rule broken:<id> source demo load "SELECT missing_column FROM no_such_table WHERE id = :id"
cache-rule acct:<id> source demo as hash ttl 1h write through store "INSERT INTO accounts (id, owner, balance) VALUES (:id, :owner, :balance) ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, balance = excluded.balance" delete "DELETE FROM accounts WHERE id = :id" load "SELECT owner, balance FROM accounts WHERE id = :id"
cache-rule counter:<id> source demo as string ttl 1h write through store "INSERT INTO counters (id, v) VALUES (:id, :value) ON CONFLICT (id) DO UPDATE SET v = excluded.v" delete "DELETE FROM counters WHERE id = :id" load "SELECT v FROM counters WHERE id = :id"
{extra}
"""


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(not postgres.available(),
                                                                         reason="PostgreSQL not installed"))]


@pytest.fixture(params=BACKENDS)
def shop(request):
    db = SqliteShop() if request.param == "sqlite" else PostgresShop()
    srv = start_larder(threads=2, config_text=config(db))
    yield srv, db
    srv.stop()
    db.stop()


def info_fields(c, section="cache"):
    text = c.cmd("INFO", section)
    text = text.decode() if isinstance(text, bytes) else text
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def warm_stats(c, pattern):
    for k, v in info_fields(c).items():
        if k.startswith("warm") and f"pattern={pattern}," in v:
            return dict(kv.split("=", 1) for kv in v.split(","))
    return {}


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
    assert c.cmd("GET", "product:2") == b'{"id":2,"name":"product 2","price_cents":200}'
    assert c.cmd("TYPE", "user:3") == "hash"
    assert 75 <= c.cmd("TTL", "user:3") <= 120
    assert c.cmd("EXISTS", "user:7") == 1
    assert c.cmd("DBSIZE") == 6
    # Keys that match no rule behave as in Redis.
    assert c.cmd("GET", "nobody") is None
    assert c.cmd("HGETALL", "users:1") == []


def test_missing_rows_are_cached_as_misses(shop):
    srv, db = shop
    c = srv.conn()
    assert c.cmd("HGETALL", "user:50000") == []
    assert c.cmd("EXISTS", "user:50000") == 0
    assert c.cmd("HGET", "user:50000", "name") is None
    st = rule_stats(c, "user:<id>")
    assert int(st["negative_hits"]) >= 2
    loads = int(st["loads"])
    # The row appears; within the negative TTL (1 s) the miss is remembered,
    # after it the next read loads the row.
    db.execute("INSERT INTO users VALUES (50000, 'late', 'l@example.com', 'pro', NULL)")
    deadline = time.time() + 20
    while time.time() < deadline:
        if c.cmd("HGET", "user:50000", "name") == b"late":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the new row was never loaded")
    assert int(rule_stats(c, "user:<id>")["loads"]) == loads + 1


def read_all_at_once(srv, n, *command):
    """n clients send `command` at the same moment; returns the replies and
    one of the connections (the others are closed)."""
    conns = [srv.conn(timeout=120) for _ in range(n)]
    results = [None] * n
    barrier = threading.Barrier(n)

    def reader(i):
        barrier.wait()
        results[i] = conns[i].cmd(*command)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for c in conns[1:]:
        c.close()
    return results, conns[0]


def test_concurrent_misses_share_one_load(shop):
    srv, _ = shop
    n = 200
    results, c = read_all_at_once(srv, n, "HGET", "slow:11", "name")
    assert results == [b"user 11"] * n
    st = rule_stats(c, "slow:<id>")
    assert int(st["loads"]) == 1, st
    assert int(st["misses"]) + int(st["coalesced"]) == n, st


def test_ttl_jitter_spreads_expiry(shop):
    srv, _ = shop
    c = srv.conn()
    n = 10000
    t0 = time.time() * 1000
    for start in range(1, n + 1, 1000):
        c.pipeline([("HGET", f"user:{i}", "name") for i in range(start, start + 1000)])
    t1 = time.time() * 1000
    # Absolute expiry times, relative to when loading began (loading 10,000
    # keys takes a while, longer under the sanitizers).
    rel = [t - t0 for t in c.pipeline([("PEXPIRETIME", f"user:{i}") for i in range(1, n + 1)])]
    # ttl 100 s, jitter 20%: 80 s to 120 s after each key's load.
    assert min(rel) >= 79_000 and max(rel) <= 120_500 + (t1 - t0), (min(rel), max(rel), t1 - t0)
    assert min(rel) < 85_000 + (t1 - t0) and max(rel) > 115_000, (min(rel), max(rel))
    buckets = [0] * 8
    for t in rel:
        buckets[min(7, max(0, int((t - 80_000) / 5_000)))] += 1
    assert min(buckets) > n / 8 / 3, buckets  # no part of the range left empty


def test_pipelines_keep_their_order(shop):
    srv, _ = shop
    c = srv.conn()
    cmds = [("SET", "a", "1"), ("HGET", "user:21", "name"), ("GET", "a"), ("HGET", "slow:22", "name"),
            ("GET", "user:23:plan"), ("HGET", "user:99999", "name"), ("INCR", "a"), ("PING",)]
    assert c.pipeline(cmds) == ["OK", b"user 21", b"1", b"user 22", b"pro", None, 2, "PONG"]
    # Many clients, many keys, deep pipelines.
    errors = []

    def worker(w):
        try:
            cc = srv.conn(timeout=60)
            for rnd in range(5):
                ids = [(w * 97 + rnd * 13 + k) % 11900 + 1 for k in range(50)]
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
    assert "cache source 'demo'" in str(r) and "no_such_table" in str(r), r
    assert int(rule_stats(c, "broken:<id>")["load_errors"]) == 1
    assert c.cmd("PING") == "PONG"


def test_rules_change_at_runtime_and_survive_rewrite(shop):
    srv, _ = shop
    c = srv.conn()
    assert len(c.cmd("CACHE", "RULES")) == 7
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
    assert c.cmd("CONFIG", "REWRITE") == "OK"  # and a rewrite of a rewrite keeps them once
    assert open(srv.config_path).read().count("cache-rule name:<id>") == 1


def test_warming_preloads_keys_while_serving(shop):
    srv, _ = shop
    c = srv.conn()
    assert c.cmd("CACHE", "WARM", "user:<id>",
                 "SELECT id, name, email, plan, referrer FROM users WHERE id <= 2500") == "Warming started"
    # Service goes on meanwhile.
    assert c.cmd("SET", "x", "1") == "OK"
    assert postgres.wait_until(lambda: warm_stats(c, "user:<id>").get("state") == "done", 60)
    w = warm_stats(c, "user:<id>")
    assert w["rows"] == "2500" and w["total"] == "2500" and w["skipped"] == "0", w
    loads = int(rule_stats(c, "user:<id>")["loads"])
    assert c.cmd("HGET", "user:1777", "email") == b"u1777@example.com"
    assert c.cmd("HGET", "user:3", "referrer") == b"ref3"
    assert c.cmd("HEXISTS", "user:4", "referrer") == 0  # NULL columns left out, as when loaded
    assert int(rule_stats(c, "user:<id>")["loads"]) == loads  # answered from the warmed keys
    assert c.cmd("DBSIZE") == 2501
    assert 75 <= c.cmd("TTL", "user:2000") <= 120
    r = c.cmd("CACHE", "WARM", "nope:<id>", "SELECT 1")
    assert isinstance(r, Error) and "no cache rule" in str(r)
    assert c.cmd("CACHE", "WARM", "product:<id>", "SELECT id, name FROM no_such_table") == "Warming started"
    assert postgres.wait_until(lambda: warm_stats(c, "product:<id>").get("state") == "failed", 30)


def test_warming_at_startup(tmp_path):
    db = SqliteShop()
    srv = start_larder(threads=2, config_text=config(db, 'cache-warm product:<id> "SELECT id, name, price_cents FROM products"'))
    try:
        c = srv.conn()
        assert postgres.wait_until(lambda: warm_stats(c, "product:<id>").get("state") == "done", 60)
        assert c.cmd("DBSIZE") == 50
        assert c.cmd("GET", "product:9") == b'{"name":"product 9","price_cents":900}'
    finally:
        srv.stop()


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


def test_write_through_to_a_locked_sqlite_file_changes_nothing():
    """SQLite's 'down': another process holds the file's write lock (past
    the busy timeout). The write gets an error naming the source and the
    cache keeps its value; once the lock is gone writes go through again."""
    db = SqliteShop()
    srv = start_larder(threads=2, config_text=config(db))
    try:
        c = srv.conn()
        assert c.cmd("SET", "counter:9", "1") == "OK"
        lock = sqlite3.connect(db.path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        r = c.cmd("SET", "counter:9", "2")
        assert isinstance(r, Error) and "cache source 'demo' refused the write to 'counter:9'" in str(r), r
        assert c.cmd("GET", "counter:9") == b"1"
        lock.execute("ROLLBACK")
        lock.close()
        assert c.cmd("SET", "counter:9", "3") == "OK"
        assert db.query("SELECT v FROM counters WHERE id = 9") == [(3,)]
    finally:
        srv.stop()
        db.stop()


# ---- PostgreSQL only: the database counts the loads, and can be stopped ----

needs_pg = pytest.mark.skipif(not postgres.available(), reason="PostgreSQL not installed")


@pytest.fixture
def pg_shop():
    db = PostgresShop()
    extra = ('cache-rule hot:<id> source demo as hash ttl 1s refresh-ahead yes load-timeout 5s '
             f'load "{PG_SLOW}"\n'
             'cache-rule graced:<id> source demo as hash ttl 1s grace 60s load-timeout 1s '
             '"load" "SELECT name FROM users WHERE id = :id::int"\n')
    srv = start_larder(threads=2, config_text=config(db, extra))
    yield srv, db
    srv.stop()
    db.stop()


@needs_pg
def test_stampede_of_500_clients_runs_one_query(pg_shop):
    srv, db = pg_shop
    n = 500
    results, _ = read_all_at_once(srv, n, "HGET", "slow:42", "name")
    assert results == [b"user 42"] * n
    assert db.loads_logged(42) == 1  # counted by PostgreSQL itself


@needs_pg
def test_refresh_ahead_keeps_readers_off_the_database(pg_shop):
    srv, db = pg_shop
    c = srv.conn()
    assert c.cmd("HGET", "hot:7", "name") == b"user 7"  # the first load (0.2 s)
    stop = threading.Event()
    slowest, count, errors = [0.0], [0], []

    def reader():
        cc = srv.conn(timeout=30)
        while not stop.is_set():
            t0 = time.time()
            r = cc.cmd("HGET", "hot:7", "name")
            dt = time.time() - t0
            if r != b"user 7":
                errors.append(r)
            slowest[0] = max(slowest[0], dt)
            count[0] += 1
        cc.close()

    threads = [threading.Thread(target=reader) for _ in range(50)]
    for t in threads:
        t.start()
    time.sleep(4.5)  # 4.5 TTL periods
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []
    # No reader waited for the database: only the first read missed, and no
    # read joined a load it had to wait for (reloads ran in the background).
    st = rule_stats(c, "hot:<id>")
    assert st["misses"] == "1" and st["coalesced"] == "0", st
    loads = db.loads_logged(7)
    print(f"refresh-ahead: {count[0]} reads, slowest {slowest[0] * 1000:.1f} ms, {loads} loads in 4.5 TTL periods")
    # A reload starts up to two load times (0.2 s) before the TTL ends, so
    # that it is in before: about one per 0.6 s of a 1 s TTL, plus the first.
    assert 3 <= loads <= 12, loads
    assert int(st["early_refreshes"]) + int(st["stale_served"]) >= 3, st


@needs_pg
def test_grace_serves_stale_values_while_the_database_is_down(pg_shop):
    srv, db = pg_shop
    c = srv.conn()
    assert c.cmd("HGET", "graced:1", "name") == b"user 1"
    db.pg.stop_server()
    time.sleep(1.2)  # past the TTL, inside the grace period
    for _ in range(3):
        assert c.cmd("HGET", "graced:1", "name") == b"user 1"
    # A key never loaded has nothing to serve: a clear error naming the source.
    r = c.cmd("HGET", "graced:2", "name")
    assert isinstance(r, Error) and "cache source 'demo'" in str(r), r
    st = rule_stats(c, "graced:<id>")
    assert int(st["stale_served"]) >= 3 and int(st["load_errors"]) >= 1, st
    assert info_fields(c)["source_demo"].startswith("kind=postgresql,up=0")
    db.pg.start()
    # Loads resume by themselves once the database is back.
    assert postgres.wait_until(lambda: c.cmd("HGET", "graced:2", "name") == b"user 2", timeout=30)
    assert postgres.wait_until(lambda: info_fields(c)["source_demo"].startswith("kind=postgresql,up=1"))


def test_a_write_during_a_load_wins(shop):
    srv, _ = shop
    reader, writer = srv.conn(timeout=30), srv.conn()
    got = []
    t = threading.Thread(target=lambda: got.append(reader.cmd("HGET", "slow:31", "name")))
    t.start()
    time.sleep(0.05)  # the slow load (~0.2 s) is running
    assert writer.cmd("HSET", "slow:31", "name", "written") == 1
    t.join(30)
    # The load's row is older than the write: the write stays.
    assert writer.cmd("HGET", "slow:31", "name") == b"written"
    assert got in ([b"written"], [b"user 31"])


def test_write_through_reaches_the_database_first(shop):
    srv, db = shop
    c = srv.conn()
    assert c.cmd("SET", "counter:1", "5") == "OK"
    assert db.query("SELECT v FROM counters WHERE id = 1") == [(5,)]
    assert c.cmd("INCR", "counter:1") == 6
    assert c.cmd("INCRBY", "counter:1", "10") == 16
    assert db.query("SELECT v FROM counters WHERE id = 1") == [(16,)]
    assert c.cmd("GET", "counter:1") == b"16"
    assert c.cmd("HSET", "acct:7", "owner", "ann", "balance", "10") == 2
    assert db.query("SELECT owner, balance FROM accounts WHERE id = 7") == [("ann", 10)]
    assert c.cmd("HINCRBY", "acct:7", "balance", "5") == 15
    assert db.query("SELECT balance FROM accounts WHERE id = 7") == [(15,)]
    # The database refuses (CHECK balance >= 0): an error, and the cache unchanged.
    r = c.cmd("HINCRBY", "acct:7", "balance", "-100")
    assert isinstance(r, Error) and "cache source 'demo' refused the write to 'acct:7'" in str(r), r
    assert c.cmd("HGET", "acct:7", "balance") == b"15"
    assert db.query("SELECT balance FROM accounts WHERE id = 7") == [(15,)]
    # A field the hash lacks binds NULL (NOT NULL refuses it), on both databases.
    r = c.cmd("HSET", "acct:8", "owner", "bo")
    assert isinstance(r, Error) and "null" in str(r).lower() and "syntax" not in str(r).lower(), r
    assert c.cmd("EXISTS", "acct:8") == 0
    # A command that fails by itself never reaches the database.
    assert isinstance(c.cmd("INCR", "acct:7"), Error)
    # DEL runs the delete statement.
    assert c.cmd("DEL", "counter:1") == 1
    assert db.query("SELECT v FROM counters WHERE id = 1") == []
    assert c.cmd("GET", "counter:1") is None
    # Writes to one key keep their order: 50 pipelined INCRs.
    assert c.pipeline([("INCR", "counter:2")] * 50) == list(range(1, 51))
    assert db.query("SELECT v FROM counters WHERE id = 2") == [(50,)]
    # Several keys in one command: refused rather than half-written.
    r = c.cmd("MSET", "counter:3", "1", "counter:4", "2")
    assert isinstance(r, Error) and "write-through" in str(r)
    st = rule_stats(c, "acct:<id>")
    assert st["writes_through"] == "2" and st["write_errors"] == "2", st


@needs_pg
def test_write_through_with_the_database_down_changes_nothing(pg_shop):
    srv, db = pg_shop
    c = srv.conn()
    assert c.cmd("SET", "counter:9", "1") == "OK"
    db.pg.stop_server()
    r = c.cmd("SET", "counter:9", "2")
    assert isinstance(r, Error) and "cache source 'demo'" in str(r), r
    assert c.cmd("GET", "counter:9") == b"1"
    db.pg.start()
    assert postgres.wait_until(lambda: c.cmd("SET", "counter:9", "3") == "OK", timeout=30)
    assert db.query("SELECT v FROM counters WHERE id = 9") == [(3,)]


@needs_pg
def test_changes_in_postgres_invalidate_cached_keys(pg_shop):
    srv, db = pg_shop
    here = os.path.dirname(os.path.abspath(__file__))
    db.pg.sql(open(os.path.join(here, "..", "..", "examples", "postgres", "invalidate.sql")).read())
    db.pg.sql("CREATE TRIGGER users_larder AFTER INSERT OR UPDATE OR DELETE ON users "
              "FOR EACH ROW EXECUTE FUNCTION larder_notify('user:', 'id');"
              "CREATE TRIGGER accounts_larder AFTER INSERT OR UPDATE OR DELETE ON accounts "
              "FOR EACH ROW EXECUTE FUNCTION larder_notify('acct:', 'id');")
    c = srv.conn()
    assert c.cmd("HGET", "user:5", "name") == b"user 5"
    time.sleep(0.3)  # the listener is connected
    t0 = time.time()
    db.pg.sql("UPDATE users SET name = 'renamed' WHERE id = 5")
    assert postgres.wait_until(lambda: c.cmd("HGET", "user:5", "name") == b"renamed", timeout=10, interval=0.005)
    print(f"invalidation: UPDATE visible through Larder after {(time.time() - t0) * 1000:.0f} ms "
          "(psql start-up included)")
    # A watched key changes when the database invalidates it.
    assert c.cmd("HGET", "user:7", "name") == b"user 7"
    w = srv.conn()
    assert w.cmd("WATCH", "user:7") == "OK"
    db.pg.sql("UPDATE users SET name = 'seven' WHERE id = 7")
    assert postgres.wait_until(lambda: c.cmd("HGET", "user:7", "name") == b"seven", timeout=10, interval=0.005)
    w.cmd("MULTI")
    w.cmd("PING")
    assert w.cmd("EXEC") is None
    w.close()
    db.pg.sql("DELETE FROM users WHERE id = 6")
    assert c.cmd("HGET", "user:6", "name") in (b"user 6", None)
    assert postgres.wait_until(lambda: c.cmd("EXISTS", "user:6") == 0, timeout=10)
    # Larder's own write-through writes do not come back as invalidations.
    assert c.cmd("HSET", "acct:1", "owner", "bo", "balance", "3") == 2
    time.sleep(0.3)
    loads = int(rule_stats(c, "acct:<id>")["loads"])
    assert c.cmd("HGET", "acct:1", "owner") == b"bo"
    assert int(rule_stats(c, "acct:<id>")["loads"]) == loads  # still cached: no reload
