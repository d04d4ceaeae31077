"""DEBUG subcommands whose replies a differential case cannot compare:
addresses and clocks (OBJECT), reply types the test client does not parse
(PROTOCOL attrib and push), the log (LOG), INFO (CHANGE-REPL-ID), and keys
spread over the shards (POPULATE, DIGEST)."""
import re

from resp import Conn, Error, encode
from server import start_larder

LARDER_ARGS = ["--enable-debug-command", "yes"]  # for conftest's larder fixture


def raw(conn, *args):
    """Sends one command and returns the reply's bytes as they arrived."""
    conn.send_raw(encode(*args))
    conn.sock.settimeout(5)
    data = b""
    while True:
        data += conn.sock.recv(65536)
        try:
            conn.buf = data
            conn.read()
            if not conn.buf:
                return data
        except (ValueError, IndexError):
            pass


def debug_object_field(conn, key, field):
    line = conn.cmd("DEBUG", "OBJECT", key)
    m = re.search(field + r":(\S+)", line)
    return m.group(1) if m else None


def test_debug_object_shows_the_encoding_object_encoding_does(conn):
    conn.cmd("SET", "int", "12345")
    conn.cmd("SET", "emb", "hello")
    conn.cmd("SET", "raw", "x" * 100)
    conn.cmd("RPUSH", "list", "a", "b")
    conn.cmd("SADD", "intset", "1", "2")
    conn.cmd("SADD", "strset", "a")
    conn.cmd("HSET", "smallhash", "f", "v")
    conn.cmd("HSET", "bighash", "f", "v" * 1024)
    conn.cmd("ZADD", "smallz", "1", "a")
    conn.cmd("ZADD", "bigz", "1", "a" * 100)
    for key in ["int", "emb", "raw", "list", "intset", "strset", "smallhash", "bighash", "smallz", "bigz"]:
        expected = conn.cmd("OBJECT", "ENCODING", key).decode()
        assert debug_object_field(conn, key, "encoding") == expected, key
    assert debug_object_field(conn, "bighash", "encoding") == "hashtable"
    line = conn.cmd("DEBUG", "OBJECT", "emb")
    assert re.match(r"Value at:0x[0-9a-f]+ refcount:\d+ encoding:embstr serializedlength:\d+ lru:\d+ "
                    r"lru_seconds_idle:\d+", line), line
    assert conn.cmd("DEBUG", "OBJECT", "nokey") == Error("ERR no such key")


def test_debug_protocol_attrib_and_push_in_resp3(larder):
    c = larder.conn()
    assert raw(c, "DEBUG", "PROTOCOL", "attrib") == b"$39\r\nSome real reply following the attribute\r\n"
    assert raw(c, "DEBUG", "PROTOCOL", "push") == b"-ERR RESP2 is not supported by this command\r\n"
    c.cmd("HELLO", "3")
    # Redis 7.0's bytes: the attribute, then the reply it annotates.
    c.send_raw(encode("DEBUG", "PROTOCOL", "attrib"))
    want = (b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n"
            b"$39\r\nSome real reply following the attribute\r\n")
    got = b""
    while len(got) < len(want):
        got += c.sock.recv(65536)
    assert got == want
    # A push message, then the real reply.
    assert c.cmd("DEBUG", "PROTOCOL", "push") == [b"server-cpu-usage", 42]
    assert c.read() == b"Some real reply following the push reply"
    assert c.cmd("DEBUG", "PROTOCOL", "bignum") == ("bignum", "1234567999999999999999999999999999999")
    assert c.cmd("DEBUG", "PROTOCOL", "map") == {"map": [(0, False), (1, True), (2, False)]}
    c.close()


def test_debug_log_writes_to_the_log(larder, conn):
    assert conn.cmd("DEBUG", "LOG", "a marker for the test 8d1f") == "OK"
    conn.cmd("PING")
    assert "DEBUG LOG: a marker for the test 8d1f" in larder.read_log()


def test_debug_change_repl_id(conn):
    def replid():
        info = conn.cmd("INFO", "replication").decode()
        return re.search(r"master_replid:([0-9a-f]{40})", info).group(1)

    before = replid()
    assert conn.cmd("DEBUG", "CHANGE-REPL-ID") == "OK"
    after = replid()
    assert after != before
    assert replid() == after


def test_debug_populate_fills_every_shard(conn):
    assert conn.cmd("DEBUG", "POPULATE", "1000") == "OK"
    assert conn.cmd("DBSIZE") == 1000
    assert conn.cmd("GET", "key:0") == b"value:0"
    assert conn.cmd("GET", "key:999") == b"value:999"
    # Both shards got keys (KEYS gathers from every shard).
    assert len(conn.cmd("KEYS", "key:*")) == 1000
    conn.cmd("SELECT", "3")
    assert conn.cmd("DEBUG", "POPULATE", "10", "p", "20") == "OK"
    assert conn.cmd("DBSIZE") == 10
    assert conn.cmd("GET", "p:7") == b"value:7" + b"\x00" * 13
    conn.cmd("SELECT", "0")
    assert conn.cmd("DBSIZE") == 1000


def test_debug_digest_is_independent_of_the_shard_layout(larder, conn):
    # The same data in one shard or in two gives the same digest.
    conn.cmd("DEBUG", "POPULATE", "200")
    conn.cmd("RPUSH", "l", "a", "b")
    conn.cmd("ZADD", "z", "1", "x")
    conn.cmd("SELECT", "5")
    conn.cmd("HSET", "h", "f", "v")
    conn.cmd("SELECT", "0")
    two = conn.cmd("DEBUG", "DIGEST")
    single = start_larder(args=LARDER_ARGS, threads=1)
    try:
        c = single.conn()
        c.cmd("DEBUG", "POPULATE", "200")
        c.cmd("RPUSH", "l", "a", "b")
        c.cmd("ZADD", "z", "1", "x")
        c.cmd("SELECT", "5")
        c.cmd("HSET", "h", "f", "v")
        assert c.cmd("DEBUG", "DIGEST") == two
        c.close()
    finally:
        single.stop()
    assert two != "0" * 40
    conn.cmd("FLUSHALL")
    assert conn.cmd("DEBUG", "DIGEST") == "0" * 40
