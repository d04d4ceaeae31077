"""The slow log, LATENCY HISTOGRAM and DOCTOR, and CONFIG SET port/bind:
replies with timings, client addresses or listening sockets, which a
differential case cannot compare."""
import socket
import time

import pytest
from resp import Conn, Error
from server import free_port, start_larder, wait_until

LARDER_ARGS = ["--enable-debug-command", "yes"]  # for conftest's larder fixture


@pytest.fixture
def conn(larder):
    c = larder.conn()
    c.cmd("FLUSHALL")
    yield c
    c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "10000", "slowlog-max-len", "128")
    c.close()


def names(entries):
    return [b" ".join(e[3]).decode() for e in entries]


def test_slowlog_get_and_reset_as_redis_logs_them(conn):
    conn.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
    conn.cmd("SLOWLOG", "RESET")
    # Redis logs a command after it ran: RESET is the first entry of the new
    # log, and GET never shows itself.
    assert names(conn.cmd("SLOWLOG", "GET")) == ["SLOWLOG RESET"]
    conn.cmd("SET", "a", "1")
    assert names(conn.cmd("SLOWLOG", "GET")) == ["SET a 1", "SLOWLOG GET", "SLOWLOG RESET"]
    assert conn.cmd("SLOWLOG", "LEN") == 4
    entries = conn.cmd("SLOWLOG", "GET")
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    e = entries[0]
    assert len(e) == 6 and isinstance(e[1], int) and isinstance(e[2], int) and e[4].startswith(b"127.0.0.1:")


def test_slowlog_merges_the_shards_and_keeps_max_len(conn):
    conn.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "3")
    conn.cmd("SLOWLOG", "RESET")
    # Keys on both shards: each shard logs its own commands.
    for i in range(12):
        conn.cmd("SET", f"k{i}", "v")
    # The newest three, by id, whichever shard logged them.
    assert names(conn.cmd("SLOWLOG", "GET", "-1")) == ["SET k11 v", "SET k10 v", "SET k9 v"]
    assert conn.cmd("SLOWLOG", "LEN") == 3
    assert len(conn.cmd("SLOWLOG", "GET", "-1")) == 3
    assert len(conn.cmd("SLOWLOG", "GET", "10")) == 3
    assert len(conn.cmd("SLOWLOG", "GET", "0")) == 0
    assert len(conn.cmd("SLOWLOG", "GET", "1")) == 1
    assert conn.cmd("SLOWLOG", "GET", "-2") == Error("ERR count should be greater than or equal to -1")


def histogram(conn, *cmds):
    reply = conn.cmd("LATENCY", "HISTOGRAM", *cmds)
    out = {}
    for name, body in zip(reply[::2], reply[1::2]):
        fields = dict(zip(body[::2], body[1::2]))
        out[name.decode()] = (fields[b"calls"], fields[b"histogram_usec"])
    return out


def test_latency_histogram(conn):
    conn.cmd("CONFIG", "RESETSTAT")
    # CONFIG RESETSTAT itself is counted after the reset, LATENCY HISTOGRAM
    # only after it answered (as Redis).
    assert list(histogram(conn)) == ["config|resetstat"]
    for i in range(5):
        conn.cmd("SET", f"k{i}", "v")
    conn.cmd("GET", "k1")
    conn.cmd("CLIENT", "ID")
    h = histogram(conn, "set", "get", "client", "nosuch", "config|resetstat")
    assert list(h) == ["set", "get", "client|id", "config|resetstat"]
    calls, steps = h["set"]
    assert calls == 5
    # Cumulative counts at Redis's steps (1, 2, 4, 8, 16, 33, 66... us).
    values = steps[1::2]
    assert values == sorted(values) and values[-1] == 5
    # The steps redis-server 7.0.15 reports (DEBUG SLEEP 0.003 / 0.01 / 0.1
    # there show 4227, 16908, 135266).
    allowed = {1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113, 4227, 8454, 16908, 33816, 67633, 135266,
               270532, 541065, 1082130}
    assert set(steps[::2]) <= allowed
    assert histogram(conn, "nosuch") == {}
    assert "latency|histogram" in histogram(conn)
    conn.cmd("CONFIG", "SET", "latency-tracking", "no")
    conn.cmd("CONFIG", "RESETSTAT")
    conn.cmd("SET", "x", "y")
    assert histogram(conn) == {}
    conn.cmd("CONFIG", "SET", "latency-tracking", "yes")


def test_latency_histogram_buckets_a_slow_command(conn):
    conn.cmd("CONFIG", "RESETSTAT")
    conn.cmd("DEBUG", "SLEEP", "0.01")
    calls, steps = histogram(conn, "debug")["debug"]
    assert calls == 1
    # 10 ms or more: the first step that holds it is 16908 us or above.
    assert steps[0] >= 16908 and steps[1] == 1


def test_latency_doctor(conn):
    conn.cmd("LATENCY", "RESET")
    conn.cmd("CONFIG", "SET", "latency-monitor-threshold", "0")
    assert conn.cmd("LATENCY", "DOCTOR").startswith(b"I'm sorry, Dave, I can't do that.")
    conn.cmd("CONFIG", "SET", "latency-monitor-threshold", "100")
    assert conn.cmd("LATENCY", "DOCTOR").startswith(b"Dave, no latency spike was observed")
    conn.cmd("CONFIG", "SET", "latency-monitor-threshold", "0")


def test_config_set_port_listens_again(larder):
    c = larder.conn()
    # A port in use: refused with Redis's error, nothing changed.
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    used = busy.getsockname()[1]
    assert c.cmd("CONFIG", "SET", "maxmemory", "10000001", "port", str(used), "client-query-buffer-limit", "10m") == \
        Error("ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. "
              "Check server logs.")
    busy.close()
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    assert c.cmd("CONFIG", "GET", "port") == [b"port", str(larder.port).encode()]
    assert Conn(larder.port).cmd("PING") == "PONG"
    # The same value changes nothing.
    assert c.cmd("CONFIG", "SET", "port", str(larder.port), "bind", "* -::*") == "OK"
    # A new port: the server listens there (every shard), not on the old one;
    # open connections stay.
    new = free_port()
    assert c.cmd("CONFIG", "SET", "port", str(new)) == "OK"
    assert wait_until(lambda: _connects(new))
    assert wait_until(lambda: not _connects(larder.port))
    conns = [Conn(new) for _ in range(8)]
    assert all(x.cmd("PING") == "PONG" for x in conns)
    assert c.cmd("CONFIG", "GET", "port") == [b"port", str(new).encode()]
    assert f"tcp_port:{new}" in c.cmd("INFO", "server").decode()
    # bind: an address that cannot be bound is refused, nothing changes.
    assert c.cmd("CONFIG", "SET", "bind", "192.0.2.1") == \
        Error("ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses.")
    assert c.cmd("CONFIG", "GET", "bind") == [b"bind", b"* -::*"]
    assert c.cmd("CONFIG", "SET", "bind", "127.0.0.1") == "OK"
    assert Conn(new).cmd("PING") == "PONG"
    # Back to the start.
    assert c.cmd("CONFIG", "SET", "bind", "* -::*", "port", str(larder.port)) == "OK"
    assert wait_until(lambda: _connects(larder.port))
    assert c.cmd("PING") == "PONG"
    for x in conns:
        x.close()
    c.close()


def _connects(port):
    try:
        x = Conn(port, timeout=2)
        ok = x.cmd("PING") == "PONG"
        x.close()
        return ok
    except OSError:
        return False


def test_maxmemory_clients_only_zero(conn):
    err = conn.cmd("CONFIG", "SET", "maxmemory-clients", "10mb")
    assert isinstance(err, Error) and "maxmemory-clients" in err.msg and "only 0" in err.msg
    assert conn.cmd("CONFIG", "SET", "maxmemory-clients", "5%").msg == err.msg
    assert conn.cmd("CONFIG", "GET", "maxmemory-clients") == [b"maxmemory-clients", b"0"]
    assert conn.cmd("CONFIG", "SET", "maxmemory-clients", "0") == "OK"


def test_maxmemory_clients_refused_at_startup(tmp_path):
    with pytest.raises(RuntimeError, match="maxmemory-clients"):
        start_larder(args=["--maxmemory-clients", "1gb"])
