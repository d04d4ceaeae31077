"""Per-field hash expiry (HEXPIRE family, Redis 7.4 semantics). Debian's
redis-server 7.0 has no such commands, so these are checked against the
documented behaviour rather than differentially."""
import time

from resp import Error
from server import wait_until




def test_set_read_and_persist_field_ttls(conn):
    conn.cmd("HSET", "h", "a", "1", "b", "2", "c", "3")
    assert conn.cmd("HEXPIRE", "h", "100", "FIELDS", "2", "a", "nosuch") == [1, -2]
    ttl = conn.cmd("HTTL", "h", "FIELDS", "3", "a", "b", "nosuch")
    assert 99 <= ttl[0] <= 100 and ttl[1:] == [-1, -2]
    assert 99000 <= conn.cmd("HPTTL", "h", "FIELDS", "1", "a")[0] <= 100000
    at = conn.cmd("HEXPIRETIME", "h", "FIELDS", "1", "a")[0]
    assert abs(at - (time.time() + 100)) < 5
    assert conn.cmd("HPEXPIRETIME", "h", "FIELDS", "1", "a")[0] // 1000 == at
    assert conn.cmd("OBJECT", "ENCODING", "h") == b"listpackex"
    assert conn.cmd("HPERSIST", "h", "FIELDS", "3", "a", "b", "nosuch") == [1, -1, -2]
    assert conn.cmd("HTTL", "nokey", "FIELDS", "2", "a", "b") == [-2, -2]
    assert conn.cmd("HEXPIRE", "nokey", "10", "FIELDS", "1", "a") == [-2]


def test_conditions(conn):
    conn.cmd("HSET", "c", "f", "v", "g", "w")
    assert conn.cmd("HEXPIRE", "c", "100", "XX", "FIELDS", "1", "f") == [0]
    assert conn.cmd("HEXPIRE", "c", "100", "GT", "FIELDS", "1", "f") == [0]
    assert conn.cmd("HEXPIRE", "c", "100", "LT", "FIELDS", "1", "f") == [1]
    assert conn.cmd("HEXPIRE", "c", "200", "NX", "FIELDS", "2", "f", "g") == [0, 1]
    assert conn.cmd("HEXPIRE", "c", "300", "GT", "FIELDS", "1", "f") == [1]
    assert conn.cmd("HEXPIRE", "c", "50", "LT", "FIELDS", "1", "f") == [1]
    assert conn.cmd("HEXPIRE", "c", "60", "GT", "FIELDS", "1", "f") == [1]


def test_past_time_deletes_and_writes_reset_ttl(conn):
    conn.cmd("HSET", "p", "a", "1", "b", "2", "n", "5")
    assert conn.cmd("HEXPIRE", "p", "0", "FIELDS", "1", "a") == [2]
    assert conn.cmd("HEXPIREAT", "p", "1", "FIELDS", "1", "b") == [2]
    assert conn.cmd("HEXPIRE", "p", "100", "FIELDS", "1", "n") == [1]
    assert conn.cmd("HINCRBY", "p", "n", "1") == 6
    assert conn.cmd("HTTL", "p", "FIELDS", "1", "n")[0] > 0  # HINCRBY keeps the TTL
    conn.cmd("HSET", "p", "n", "7")
    assert conn.cmd("HTTL", "p", "FIELDS", "1", "n") == [-1]  # HSET drops it
    assert conn.cmd("HEXPIRE", "p", "0", "FIELDS", "1", "n") == [2]
    assert conn.cmd("EXISTS", "p") == 0  # the last field went, so did the key


def test_fields_expire_lazily_and_actively(conn):
    conn.cmd("HSET", "lazy", "keep", "1", "go", "2")
    assert conn.cmd("HPEXPIRE", "lazy", "50", "FIELDS", "1", "go") == [1]
    assert wait_until(lambda: conn.cmd("HGET", "lazy", "go") is None)
    assert conn.cmd("HGETALL", "lazy") == [b"keep", b"1"]
    assert conn.cmd("HLEN", "lazy") == 1
    # Never touched again: the active cycle reclaims the fields and the key.
    conn.cmd("HSET", "active", "f", "v")
    assert conn.cmd("HPEXPIRE", "active", "50", "FIELDS", "1", "f") == [1]
    assert wait_until(lambda: b"active" not in conn.cmd("KEYS", "*"))


def test_errors(conn):
    conn.cmd("SET", "s", "v")
    conn.cmd("HSET", "h", "f", "v")
    wrongtype = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert conn.cmd("HEXPIRE", "s", "notanum", "FIELDS", "1", "f") == wrongtype
    assert conn.cmd("HTTL", "s", "FIELDS", "1", "f") == wrongtype
    assert conn.cmd("HEXPIRE", "h", "notanum", "FIELDS", "1", "f") == Error("ERR value is not an integer or out of range")
    assert conn.cmd("HEXPIRE", "h", "-1", "FIELDS", "1", "f") == Error("ERR invalid expire time, must be >= 0")
    assert conn.cmd("HEXPIRE", "h", str(2**48), "FIELDS", "1", "f") == Error("ERR invalid expire time in 'hexpire' command")
    assert conn.cmd("HEXPIRE", "h", "100", "BADCOND", "FIELDS", "1", "f") == Error(
        "ERR Mandatory argument FIELDS is missing or not at the right position")
    assert conn.cmd("HTTL", "h", "NOTFIELDS", "1", "f") == Error(
        "ERR Mandatory argument FIELDS is missing or not at the right position")
    assert conn.cmd("HEXPIRE", "h", "100", "FIELDS", "0", "f") == Error("ERR Parameter `numFields` should be greater than 0")
    assert conn.cmd("HTTL", "h", "FIELDS", "x", "f") == Error("ERR Number of fields must be a positive integer")
    assert conn.cmd("HEXPIRE", "h", "100", "FIELDS", "2", "f") == Error(
        "ERR The `numfields` parameter must match the number of arguments")
    assert conn.cmd("HPERSIST", "h", "FIELDS", "1", "f", "g") == Error(
        "ERR The `numfields` parameter must match the number of arguments")
