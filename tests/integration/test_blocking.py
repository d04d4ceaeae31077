"""Blocking list commands with clients spread over the shard threads: FIFO
wake-up order, timeouts, one push serving several waiters, deleted keys, and
clients that disconnect while blocked (no element is lost)."""
import time

from resp import Error, encode
from slots import shard_of


def wait_blocked(conn, n, timeout=30):
    """Polls until `n` clients are blocked (CLIENT LIST flag b: each one's
    request reached the server and waits; `cmd=` would still name a served
    client's last blocking command)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = conn.cmd("CLIENT", "LIST").decode()
        flags = [f.split("=", 1)[1] for line in text.splitlines() for f in line.split() if f.startswith("flags=")]
        if sum(1 for f in flags if "b" in f) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("clients did not block")


def test_fifo_wakeup_order(larder, conn):
    waiters = [larder.conn() for _ in range(6)]
    for i, w in enumerate(waiters):
        w.send_raw(encode("BLPOP", "q:fifo", "0"))
        wait_blocked(conn, i + 1)
    for i in range(6):
        # Each element goes straight to the oldest waiter: the list never grows.
        assert conn.cmd("RPUSH", "q:fifo", f"item{i}") == 1
    for i, w in enumerate(waiters):
        assert w.read() == [b"q:fifo", f"item{i}".encode()]
        w.close()
    assert conn.cmd("LLEN", "q:fifo") == 0


def test_one_push_serves_several_waiters(larder, conn):
    waiters = [larder.conn() for _ in range(3)]
    for i, w in enumerate(waiters):
        w.send_raw(encode("BRPOP", "q:multi", "0"))
        wait_blocked(conn, i + 1)
    assert conn.cmd("LPUSH", "q:multi", "a", "b", "c", "d") == 4
    got = [w.read() for w in waiters]
    # BRPOP pops from the tail: the first waiter gets "a", then "b", then "c".
    assert got == [[b"q:multi", b"a"], [b"q:multi", b"b"], [b"q:multi", b"c"]]
    assert conn.cmd("LRANGE", "q:multi", "0", "-1") == [b"d"]
    for w in waiters:
        w.close()


def test_waiting_on_keys_of_both_shards(larder, conn):
    # Keys chosen to live on different shards (2 threads): slot parity differs.
    w = larder.conn()
    w.send_raw(encode("BLPOP", "a", "b", "c", "d", "0"))
    wait_blocked(conn, 1)
    conn.cmd("RPUSH", "c", "from-c")
    assert w.read() == [b"c", b"from-c"]
    w.send_raw(encode("BLPOP", "a", "b", "c", "d", "0"))
    wait_blocked(conn, 1)
    conn.cmd("RPUSH", "a", "from-a")
    assert w.read() == [b"a", b"from-a"]
    w.close()


def test_timeout_returns_nil_and_unblocks(larder, conn):
    w = larder.conn()
    t0 = time.time()
    assert w.cmd("BLPOP", "q:none", "0.2") is None
    assert time.time() - t0 >= 0.15
    assert w.cmd("BLMOVE", "q:none", "q:dst", "LEFT", "RIGHT", "0.1") is None
    assert w.cmd("BLMPOP", "0.1", "2", "q:none", "q:none2", "LEFT") is None
    # The client works normally afterwards, and a later push is not eaten by it.
    assert w.cmd("PING") == "PONG"
    conn.cmd("RPUSH", "q:none", "x")
    assert conn.cmd("LRANGE", "q:none", "0", "-1") == [b"x"]
    w.close()


def test_deleted_key_keeps_clients_waiting(larder, conn):
    conn.cmd("SET", "q:del", "string")
    w = larder.conn()
    assert w.cmd("BLPOP", "q:del", "0") == Error("WRONGTYPE Operation against a key holding the wrong kind of value")
    conn.cmd("DEL", "q:del")
    w.send_raw(encode("BLPOP", "q:del", "0"))
    wait_blocked(conn, 1)
    conn.cmd("RPUSH", "q:del", "v")
    conn.cmd("DEL", "q:del")
    # Served at the push, before the DEL.
    assert w.read() == [b"q:del", b"v"]
    w.send_raw(encode("BLPOP", "q:del", "0"))
    wait_blocked(conn, 1)
    conn.cmd("SET", "q:del", "now a string")
    conn.cmd("DEL", "q:del")
    conn.cmd("LPUSH", "q:del", "again")
    assert w.read() == [b"q:del", b"again"]
    w.close()


def test_disconnected_waiter_loses_nothing(larder, conn):
    gone = larder.conn()
    gone.send_raw(encode("BLPOP", "q:gone", "0"))
    wait_blocked(conn, 1)
    gone.close()
    deadline = time.time() + 30
    while "cmd=blpop" in conn.cmd("CLIENT", "LIST").decode() and time.time() < deadline:
        time.sleep(0.02)
    conn.cmd("RPUSH", "q:gone", "keep-me")
    assert conn.cmd("LRANGE", "q:gone", "0", "-1") == [b"keep-me"]


def test_blmove_served_across_shards(larder, conn):
    w = larder.conn()
    # Source and destination on different shards.
    w.send_raw(encode("BLMOVE", "a", "b", "LEFT", "RIGHT", "0"))
    wait_blocked(conn, 1)
    assert shard_of("a", 2) != shard_of("b", 2)
    conn.cmd("RPUSH", "a", "moved")
    assert w.read() == b"moved"
    # One step with both shards parked: by the reply the element is there.
    assert conn.cmd("LRANGE", "b", "0", "-1") == [b"moved"]
    assert conn.cmd("EXISTS", "a") == 0
    w.close()


def test_brpoplpush_to_a_wrong_type_key_on_another_shard(larder, conn):
    # Redis's "BRPOPLPUSH with multiple blocked clients", with the first
    # waiter's destination (a string) on another shard than the source: it
    # gets WRONGTYPE and the element goes to the second waiter.
    keys = [f"k{i}" for i in range(40)]
    src = keys[0]
    bad = next(k for k in keys if shard_of(k, 2) != shard_of(src, 2))
    for good in (next(k for k in keys[1:] if shard_of(k, 2) == shard_of(src, 2)), bad + "x"):
        conn.cmd("DEL", src, bad, good)
        conn.cmd("SET", bad, "nolist")
        rd1, rd2 = larder.conn(), larder.conn()
        rd1.send_raw(encode("BRPOPLPUSH", src, bad, "0"))
        wait_blocked(conn, 1)
        rd2.send_raw(encode("BRPOPLPUSH", src, good, "0"))
        wait_blocked(conn, 2)
        conn.cmd("LPUSH", src, "foo")
        reply = rd1.read()
        assert isinstance(reply, Error) and reply.msg.startswith("WRONGTYPE")
        assert rd2.read() == b"foo"
        assert conn.cmd("LRANGE", good, "0", "-1") == [b"foo"]
        assert conn.cmd("GET", bad) == b"nolist"
        assert conn.cmd("EXISTS", src) == 0
        rd1.close()
        rd2.close()


def test_pipeline_after_blocking_command_waits(larder, conn):
    w = larder.conn()
    w.send_raw(encode("BLPOP", "q:pipe", "0") + encode("SET", "after", "1") + encode("GET", "after"))
    wait_blocked(conn, 1)
    assert conn.cmd("GET", "after") is None  # the SET waits behind the blocked command
    conn.cmd("RPUSH", "q:pipe", "go")
    assert w.read() == [b"q:pipe", b"go"]
    assert w.read() == "OK"
    assert w.read() == b"1"
    w.close()


def blocked_clients(conn):
    text = conn.cmd("INFO", "clients").decode()
    return int(dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)["blocked_clients"])


def test_blocked_clients_are_counted_and_flagged(larder, conn):
    assert blocked_clients(conn) == 0
    waiters = [larder.conn() for _ in range(3)]
    for i, w in enumerate(waiters):
        w.send_raw(encode("BLPOP", f"q:count{i}", "0"))
    deadline = time.time() + 30
    while blocked_clients(conn) < 3 and time.time() < deadline:
        time.sleep(0.02)
    assert blocked_clients(conn) == 3
    lines = [line for line in conn.cmd("CLIENT", "LIST").decode().splitlines() if "cmd=blpop" in line]
    assert len(lines) == 3 and all(" flags=b " in line for line in lines), lines
    for i, w in enumerate(waiters):
        assert conn.cmd("RPUSH", f"q:count{i}", "x") == 1
        assert w.read() == [f"q:count{i}".encode(), b"x"]
    deadline = time.time() + 30
    while blocked_clients(conn) and time.time() < deadline:
        time.sleep(0.02)
    assert blocked_clients(conn) == 0
    assert " flags=N " in conn.cmd("CLIENT", "INFO").decode()
    for w in waiters:
        w.close()


def test_idle_timeout_spares_blocked_clients(larder, conn):
    assert conn.cmd("CONFIG", "SET", "timeout", "1") == "OK"
    try:
        blocked = larder.conn()
        blocked.send_raw(encode("BLPOP", "q:timeout", "0"))
        idle = larder.conn()
        assert idle.cmd("PING") == "PONG"
        time.sleep(3.5)  # well past the timeout, and the cron runs every 100 ms
        # The idle client was closed; the blocked one is still there and served.
        c = larder.conn()
        assert c.cmd("RPUSH", "q:timeout", "v") == 1
        assert blocked.read() == [b"q:timeout", b"v"]
        try:
            idle.cmd("PING")
            raise AssertionError("the idle client should have been closed")
        except (OSError, ConnectionError, EOFError):
            pass
        c.close()
        blocked.close()
    finally:
        larder.conn().cmd("CONFIG", "SET", "timeout", "0")


def test_client_unblock(larder, conn):
    # Clients on both shards: CLIENT UNBLOCK finds each on its own thread.
    for mode, want in [((), None), (("TIMEOUT",), None),
                       (("ERROR",), Error("UNBLOCKED client unblocked via CLIENT UNBLOCK"))]:
        waiters = [larder.conn() for _ in range(4)]
        for i, w in enumerate(waiters):
            w.cmd("HELLO", "2")
            w.send_raw(encode("BLMOVE", "q:unblock{t}", "dst{t}", "LEFT", "LEFT", "0"))
            wait_blocked(conn, i + 1)
        ids = [int(line.split()[0][3:]) for line in conn.cmd("CLIENT", "LIST").decode().splitlines()
               if "cmd=blmove" in line]
        assert len(ids) == 4
        for i in ids:
            assert conn.cmd("CLIENT", "UNBLOCK", str(i), *mode) == 1
            assert conn.cmd("CLIENT", "UNBLOCK", str(i), *mode) == 0  # no longer blocked
        for w in waiters:
            assert w.read() == want
            assert w.cmd("PING") == "PONG"
            w.close()
    # Nothing was left registered: a push is not taken by a ghost.
    conn.cmd("RPUSH", "q:unblock{t}", "x")
    assert conn.cmd("LRANGE", "q:unblock{t}", "0", "-1") == [b"x"]
    r3 = larder.conn()
    r3.cmd("HELLO", "3")
    r3.send_raw(encode("BRPOP", "q:unblock3", "0"))
    wait_blocked(conn, 1)
    rid = [int(line.split()[0][3:]) for line in conn.cmd("CLIENT", "LIST").decode().splitlines()
           if "cmd=brpop" in line][0]
    assert conn.cmd("CLIENT", "UNBLOCK", str(rid)) == 1
    assert r3.read() is None
    r3.close()
    assert conn.cmd("CLIENT", "UNBLOCK", str(conn.cmd("CLIENT", "ID"))) == 0


def test_swapdb_serves_clients_blocked_on_a_key_it_brings_in(larder, conn):
    assert conn.cmd("SELECT", "1") == "OK"
    assert conn.cmd("RPUSH", "k:swap", "hello") == 1
    waiter = larder.conn()
    assert waiter.cmd("SELECT", "9") == "OK"
    waiter.send_raw(encode("BRPOP", "k:swap", "0"))
    deadline = time.time() + 30
    while blocked_clients(conn) < 1 and time.time() < deadline:
        time.sleep(0.02)
    assert conn.cmd("SWAPDB", "1", "9") == "OK"
    assert waiter.read() == [b"k:swap", b"hello"]
    assert conn.cmd("SELECT", "9") == "OK"
    assert conn.cmd("EXISTS", "k:swap") == 0
    conn.cmd("SELECT", "0")
    waiter.close()


def test_client_pause_write_holds_commands_that_may_replicate(larder, conn):
    assert conn.cmd("PFADD", "hll:pause", "a") == 1
    assert conn.cmd("CLIENT", "PAUSE", "100000", "WRITE") == "OK"
    try:
        other = larder.conn()
        assert other.cmd("GET", "x") is None  # reads go on
        other.send_raw(encode("PFCOUNT", "hll:pause"))  # may write its cache: held
        time.sleep(0.3)
        assert blocked_clients(conn) >= 1
    finally:
        assert conn.cmd("CLIENT", "UNPAUSE") == "OK"
    assert other.read() == 1
    other.close()


def test_a_write_across_shards_wakes_a_client_blocked_on_another_shard(larder):
    # RENAME, COPY and MSET run on whichever of their shards arrives last; the
    # key they write may live on another one, with the client waiting there.
    waiter = larder.conn()
    c = larder.conn()
    pairs = [(f"src{i}", f"dst{i}") for i in range(40) if shard_of(f"src{i}", 2) != shard_of(f"dst{i}", 2)]
    assert len(pairs) >= 8
    for src, dst in pairs[:8]:
        for how in ("RENAME", "COPY"):
            c.cmd("DEL", src, dst)
            c.cmd("RPUSH", src, "x")
            waiter.send_raw(encode("BLPOP", dst, "0"))
            wait_blocked(c, 1)
            assert c.cmd(how, src, dst) in ("OK", 1)
            waiter.sock.settimeout(30)
            assert waiter.read() == [dst.encode(), b"x"], (how, src, dst)
    waiter.close()
    c.close()
