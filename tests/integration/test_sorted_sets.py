"""Sorted-set behaviour the differential harness cannot check against Debian's
Redis 7.0: ZRANK/ZREVRANK WITHSCORE (Redis 7.2), and BZPOPMIN/BZMPOP woken by
a client on another thread."""
from resp import Error, encode
from test_blocking import wait_blocked


def test_zrank_withscore(conn):
    conn.cmd("ZADD", "lb", "10", "alice", "20", "bob", "15", "carol")
    assert conn.cmd("ZRANK", "lb", "carol", "WITHSCORE") == [1, b"15"]
    assert conn.cmd("ZREVRANK", "lb", "carol", "WITHSCORE") == [1, b"15"]
    assert conn.cmd("ZRANK", "lb", "nobody", "WITHSCORE") is None
    assert conn.cmd("ZRANK", "lb", "carol", "FOO") == Error("ERR syntax error")


def test_bzpopmin_served_by_a_push_from_another_client(larder, conn):
    w = larder.conn()
    w.send_raw(encode("BZPOPMIN", "lb:wait", "0"))
    wait_blocked(conn, 1)
    conn.cmd("ZADD", "lb:wait", "5", "x", "1", "y")
    assert w.read() == [b"lb:wait", b"y", b"1"]
    w.send_raw(encode("BZMPOP", "0", "2", "nokey", "lb:wait", "MAX", "COUNT", "5"))
    assert w.read() == [b"lb:wait", [[b"x", b"5"]]]
    w.close()
