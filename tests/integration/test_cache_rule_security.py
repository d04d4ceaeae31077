"""What a cache rule's SQL may do, and who may add rules. Each hostile load
from the issue is tried against SQLite and against a real PostgreSQL: the
rule is accepted (it is only SQL text until it runs), its load is refused
when it runs, and the database is unchanged afterwards."""
import os

import pytest

import postgres
from resp import Conn, Error
from server import start_larder
from test_read_through import PostgresShop, SqliteShop, warm_stats

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(not postgres.available(),
                                                                         reason="PostgreSQL not installed"))]


@pytest.fixture(params=BACKENDS)
def shop(request):
    db = SqliteShop() if request.param == "sqlite" else PostgresShop()
    srv = start_larder(threads=2, config_text=f"cache-source demo {db.uri}\n")
    yield srv, db
    srv.stop()
    db.stop()


def users(db):
    return db.query("SELECT count(*) FROM users")[0][0]


def add_rule(c, pattern, load):
    return c.cmd("CACHE", "RULE", "ADD", pattern, "source", "demo", "as", "string", "load", load)


def test_a_load_that_writes_is_refused_and_nothing_changes(shop):
    srv, db = shop
    c = srv.conn()
    before = users(db)
    hostile = {
        "del:<id>": "DELETE FROM users WHERE id >= :id RETURNING name",
        "two:<id>": "SELECT name FROM users WHERE id = :id; DELETE FROM users",
        "upd:<id>": "UPDATE users SET name = 'x' WHERE id >= :id RETURNING name",
    }
    if db.kind == "postgres":
        hostile["cte:<id>"] = "WITH d AS (DELETE FROM users WHERE id >= :id RETURNING name) SELECT name FROM d"
    for pattern, sql in hostile.items():
        assert add_rule(c, pattern, sql) == "OK"
        r = c.cmd("GET", pattern.replace("<id>", "1"))
        assert isinstance(r, Error), (sql, r)
    assert users(db) == before
    assert db.query("SELECT count(*) FROM users WHERE name = 'x'")[0][0] == 0
    # An honest load still works beside them.
    assert add_rule(c, "name:<id>", "SELECT name FROM users WHERE id = :id") == "OK"
    assert c.cmd("GET", "name:7") == b"user 7"


def test_a_postgres_load_cannot_turn_its_session_writable(shop):
    srv, db = shop
    if db.kind != "postgres":
        pytest.skip("PostgreSQL's session settings")
    c = srv.conn()
    before = users(db)
    assert add_rule(c, "flip:<id>", "SELECT set_config('default_transaction_read_only', 'off', false) "
                                    "WHERE :id IS NOT NULL") == "OK"
    assert add_rule(c, "cte:<id>",
                    "WITH d AS (DELETE FROM users WHERE id >= :id RETURNING name) SELECT name FROM d") == "OK"
    for _ in range(4):  # every connection of the pool
        c.cmd("DEL", "flip:1")
        c.cmd("GET", "flip:1")
    for i in range(4):
        assert isinstance(c.cmd("GET", f"cte:{i + 1}"), Error)
    assert users(db) == before


def test_sqlite_loads_cannot_attach_or_write_files(shop):
    srv, db = shop
    if db.kind != "sqlite":
        pytest.skip("SQLite's ATTACH and VACUUM INTO")
    c = srv.conn()
    target = os.path.join(db.dir, "copy.db")
    assert add_rule(c, "vac:<id>", f"VACUUM INTO '{target}'") == "OK"
    assert isinstance(c.cmd("GET", "vac:1"), Error)
    assert add_rule(c, "att:<id>", f"ATTACH DATABASE '{db.dir}/other.db' AS other") == "OK"
    assert isinstance(c.cmd("GET", "att:1"), Error)
    assert add_rule(c, "prag:<id>", "PRAGMA journal_mode = DELETE") == "OK"
    assert isinstance(c.cmd("GET", "prag:1"), Error)
    assert not os.path.exists(target)
    assert not os.path.exists(os.path.join(db.dir, "other.db"))
    # Warming queries are held to the same rule.
    assert add_rule(c, "name:<id>", "SELECT name FROM users WHERE id = :id") == "OK"
    assert c.cmd("CACHE", "WARM", "name:<id>", "SELECT id, name FROM users WHERE id < 3) AS x; DELETE FROM users; "
                 "SELECT * FROM (SELECT 1") == "Warming started"
    assert postgres.wait_until(lambda: warm_stats(c, "name:<id>").get("state") == "failed", 30)
    assert users(db) == 12000


def test_cache_rule_and_warm_are_refused_to_remote_clients_by_default(shop):
    srv, db = shop
    c = srv.conn()
    assert c.cmd("CONFIG", "GET", "enable-cache-rule-command") == [b"enable-cache-rule-command", b"local"]
    # (protected mode is on: a remote client needs the password)
    assert c.cmd("CONFIG", "SET", "requirepass", "pw") == "OK"
    remote = Conn(srv.port, source="127.0.0.2")
    assert remote.cmd("AUTH", "pw") == "OK"
    for args in (("CACHE", "RULE", "ADD", "n:<id>", "source", "demo", "load", "SELECT name FROM users WHERE id = :id"),
                 ("CACHE", "RULE", "DEL", "n:<id>"),
                 ("CACHE", "WARM", "n:<id>", "SELECT id, name FROM users")):
        r = remote.cmd(*args)
        assert isinstance(r, Error) and "enable-cache-rule-command" in str(r), (args, r)
    remote.close()


def test_cache_rule_command_no_refuses_everyone():
    db = SqliteShop()
    srv = start_larder(["--enable-cache-rule-command", "no"], config_text=f"cache-source demo {db.uri}\n")
    try:
        r = add_rule(srv.conn(), "n:<id>", "SELECT name FROM users WHERE id = :id")
        assert isinstance(r, Error) and "enable-cache-rule-command" in str(r)
    finally:
        srv.stop()


def test_a_read_only_source_takes_no_writing_rule():
    db = SqliteShop()
    srv = start_larder(config_text=f"cache-source demo {db.uri} read-only\n")
    try:
        c = srv.conn()
        r = c.cmd("CACHE", "RULE", "ADD", "acct:<id>", "source", "demo", "as", "hash", "write", "through", "store",
                  "INSERT INTO accounts (id, owner, balance) VALUES (:id, :owner, :balance)",
                  "load", "SELECT owner, balance FROM accounts WHERE id = :id")
        assert isinstance(r, Error) and "read-only" in str(r)
        assert add_rule(c, "name:<id>", "SELECT name FROM users WHERE id = :id") == "OK"
        assert c.cmd("GET", "name:3") == b"user 3"
        assert c.cmd("CACHE", "SOURCES")[0][1].endswith(b".db")
    finally:
        srv.stop()
    with pytest.raises(RuntimeError, match="read-only"):
        start_larder(config_text=f"cache-source demo {db.uri} read-only\n"
                                 "cache-rule c:<id> source demo as string write through store "
                                 "\"INSERT INTO counters (id, v) VALUES (:id, :value)\" "
                                 "load \"SELECT v FROM counters WHERE id = :id\"\n")


def test_source_passwords_never_show():
    uri = "postgresql://larder:s3cretpw@127.0.0.1:1/shop?connect_timeout=1&password=s3cretpw"
    srv = start_larder(config_text=f"cache-source pg {uri}\n")
    try:
        c = srv.conn()
        listed = c.cmd("CACHE", "SOURCES")
        assert b"s3cretpw" not in repr(listed).encode()
        assert b"larder:***@127.0.0.1" in listed[0][1]
        assert b"s3cretpw" not in c.cmd("INFO", "everything")
        assert b"s3cretpw" not in repr(c.cmd("CONFIG", "GET", "*")).encode()
        assert "s3cretpw" not in srv.read_log()
    finally:
        srv.stop()
