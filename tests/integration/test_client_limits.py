"""Limits that hold against hostile clients: what a client that has not
authenticated may send, and clients that never read their replies
(client-output-buffer-limit, MONITOR included). Memory is read from the
server's /proc entry; the bounds are the issue's, with room for a noisy
machine, and waits poll with generous deadlines."""
import select
import socket
import threading
import time

from resp import Conn, Error, encode
from server import start_larder, start_redis, wait_until


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def info_field(conn, section, name):
    for line in conn.cmd("INFO", section).decode().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return None


def jemalloc(conn):
    """RSS bounds hold for the release build's allocator (jemalloc, with its
    background thread); the sanitizer build's allocator keeps freed memory in
    quarantine, so there only the disconnections are checked."""
    return info_field(conn, "memory", "mem_allocator").startswith("jemalloc")


def raw_exchange(port, data, wait=10):
    """Sends `data`, then reads until the server closes (or `wait` passes);
    returns what came back and whether the connection was closed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = b""
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return got, True
            if not chunk:
                return got, True
            got += chunk
        return got, False
    finally:
        s.close()


def test_unauthenticated_multibulk_and_bulk_lengths_are_refused_as_redis():
    ours = start_larder(["--requirepass", "pw"])
    theirs = start_redis(["--requirepass", "pw"])
    try:
        for probe in (b"*1000000\r\n", b"*2\r\n$3\r\nGET\r\n$500000000\r\n", b"*11\r\n"):
            a = raw_exchange(ours.port, probe)
            b = raw_exchange(theirs.port, probe)
            assert a == b, (probe, a, b)
            assert a[1] and b"unauthenticated" in a[0]
        # Within the limits the client is answered (and may authenticate).
        c = ours.conn()
        assert isinstance(c.cmd("GET", "x" * 16000), Error)
        assert c.cmd("AUTH", "pw") == "OK"
        # Once authenticated, large arguments are fine.
        assert c.cmd("SET", "k", "v" * 100000) == "OK"
        assert c.cmd("STRLEN", "k") == 100000
    finally:
        ours.stop()
        theirs.stop()


def test_unauthenticated_client_that_does_not_read_is_closed_at_1kb_of_replies():
    s = start_larder(["--requirepass", "pw"])
    try:
        # 20,000 wrong AUTHs in one go: the replies pass 1 KB and the
        # connection is closed instead of buffering them all.
        got, closed = raw_exchange(s.port, encode("AUTH", "wrong") * 20000)
        assert closed
        assert got.count(b"WRONGPASS") < 20000
        c = s.conn()
        assert c.cmd("AUTH", "pw") == "OK"
        assert wait_until(lambda: info_field(c, "clients", "connected_clients") == "1")
    finally:
        s.stop()


def test_client_output_buffer_limit_setting_as_redis():
    s = start_larder()
    r = start_redis()
    try:
        c, rc = s.conn(), r.conn()
        for bad in ("wrong number", "invalid_class 10mb 10mb 60", "master 10mb 10mb 60",
                    "normal 10mbs 10mb 60", "replica 10mb 10mbs 60", "pubsub 10mb 10mb 60s"):
            ours, theirs = c.cmd("CONFIG", "SET", "client-output-buffer-limit", bad), \
                rc.cmd("CONFIG", "SET", "client-output-buffer-limit", bad)
            assert isinstance(ours, Error) and ours == theirs, (bad, ours, theirs)
        value = "normal 1mb 2mb 60 replica 3mb 4mb 70 pubsub 5mb 6mb 80"
        assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", value) == "OK"
        assert rc.cmd("CONFIG", "SET", "client-output-buffer-limit", value) == "OK"
        assert c.cmd("CONFIG", "GET", "client-output-buffer-limit") == \
            rc.cmd("CONFIG", "GET", "client-output-buffer-limit")
        # One class alone keeps the others.
        assert c.cmd("CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0") == "OK"
        assert c.cmd("CONFIG", "GET", "client-output-buffer-limit")[1] == \
            b"normal 0 0 0 slave 3145728 4194304 70 pubsub 5242880 6291456 80"
    finally:
        s.stop()
        r.stop()


def test_a_single_reply_over_the_hard_limit_closes_without_sending_it():
    s = start_larder(["--client-output-buffer-limit", "normal 100000 0 0"])
    try:
        c = s.conn()
        item = "x" * 1000
        for _ in range(150):
            c.cmd("LPUSH", "mylist", item)
        got, closed = raw_exchange(s.port, encode("LRANGE", "mylist", "0", "-1"))
        assert closed and got == b""
        assert info_field(c, "stats", "client_output_buffer_limit_disconnections") == "1"
        assert c.cmd("PING") == "PONG"
    finally:
        s.stop()


def test_soft_limit_closes_a_client_that_stays_over_it():
    s = start_larder(["--client-output-buffer-limit", "normal 0 100000 1"])
    try:
        c = s.conn()
        c.cmd("SET", "big", "x" * 50000)
        slow = socket.create_connection(("127.0.0.1", s.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(encode("GET", "big") * 200)  # ~10 MB of replies, never read
        # Over the soft limit, and nothing more is sent: the cron closes it
        # once the second has passed.
        assert wait_until(lambda: info_field(c, "stats", "client_output_buffer_limit_disconnections") == "1",
                          timeout=60)
        slow.close()
    finally:
        s.stop()


def test_monitor_that_never_reads_is_closed_at_its_limit():
    s = start_larder(["--client-output-buffer-limit", "normal 4mb 0 0"])
    try:
        mon = socket.create_connection(("127.0.0.1", s.port))
        mon.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        mon.sendall(encode("MONITOR"))
        c = s.conn()
        assert wait_until(lambda: info_field(c, "clients", "connected_clients") == "2")
        time.sleep(0.2)  # MONITOR is registered once its +OK is queued
        payload = "v" * 1000
        base = rss_bytes(s.proc.pid)
        for batch in range(200):  # up to ~20 MB of MONITOR lines
            c.pipeline([("SET", f"k{i}", payload) for i in range(100)])
            if batch % 10 == 9 and info_field(c, "stats", "client_output_buffer_limit_disconnections") == "1":
                break
        assert wait_until(lambda: info_field(c, "stats", "client_output_buffer_limit_disconnections") == "1")
        assert info_field(c, "clients", "connected_clients") == "1"
        if jemalloc(c):
            assert rss_bytes(s.proc.pid) < base + 64 * 1024 * 1024
        mon.close()
    finally:
        s.stop()


def flood(port, stop, counts, idx):
    """A client that pipelines GET big and never reads a reply."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.setblocking(False)
    chunk = encode("GET", "big") * 1000
    sent = 0
    try:
        while not stop.is_set():
            _, w, _ = select.select([], [s], [], 0.1)
            if not w:
                # Is the server still there for us?
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    try:
                        if s.recv(1, socket.MSG_PEEK) == b"":
                            break
                    except (ConnectionResetError, BlockingIOError):
                        break
                continue
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    finally:
        counts[idx] = sent
        s.close()


def test_many_slow_consumers_are_disconnected_and_memory_returns():
    s = start_larder(["--client-output-buffer-limit", "normal 64mb 32mb 10"])
    stop = threading.Event()
    try:
        c = s.conn()
        assert c.cmd("SET", "big", "x" * 100 * 1024) == "OK"
        time.sleep(0.5)
        baseline = rss_bytes(s.proc.pid)
        counts = [0] * 16
        threads = [threading.Thread(target=flood, args=(s.port, stop, counts, i)) for i in range(16)]
        for t in threads:
            t.start()
        peak = baseline
        deadline = time.time() + 120
        while time.time() < deadline:
            peak = max(peak, rss_bytes(s.proc.pid))
            if info_field(c, "stats", "client_output_buffer_limit_disconnections") == "16":
                break
            time.sleep(0.05)
        for _ in range(20):
            peak = max(peak, rss_bytes(s.proc.pid))
            time.sleep(0.05)
        assert info_field(c, "stats", "client_output_buffer_limit_disconnections") == "16"
        if jemalloc(c):
            assert peak < 1500 * 1024 * 1024, f"peak RSS {peak >> 20} MB"
        stop.set()
        for t in threads:
            t.join()
        assert wait_until(lambda: info_field(c, "clients", "connected_clients") == "1")
        # jemalloc's background thread returns the buffers to the system.
        assert not jemalloc(c) or wait_until(lambda: rss_bytes(s.proc.pid) < baseline + 100 * 1024 * 1024, timeout=90), \
            f"RSS {rss_bytes(s.proc.pid) >> 20} MB after the clients closed, baseline {baseline >> 20} MB"
    finally:
        stop.set()
        s.stop()


def test_clients_buffers_are_counted_in_info_memory():
    s = start_larder()
    try:
        c = s.conn()
        c.cmd("SET", "big", "x" * 50000)
        slow = socket.create_connection(("127.0.0.1", s.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(encode("GET", "big") * 400)  # ~20 MB of replies, never read
        assert wait_until(lambda: int(info_field(c, "memory", "mem_clients_normal")) > 10_000_000)
        assert int(info_field(c, "clients", "client_recent_max_output_buffer")) > 10_000_000
        # used_memory counts them too (maxmemory sees them).
        assert int(info_field(c, "memory", "used_memory")) > 10_000_000
        slow.close()
        assert wait_until(lambda: int(info_field(c, "memory", "mem_clients_normal")) < 1_000_000)
    finally:
        s.stop()


def test_a_huge_random_count_stops_at_the_limit_instead_of_filling_memory():
    s = start_larder(["--client-output-buffer-limit", "normal 1mb 0 0"])
    try:
        c = s.conn()
        c.cmd("HSET", "h", "a", "b")
        c.cmd("SADD", "s", "a")
        c.cmd("ZADD", "z", "1", "a")
        base = rss_bytes(s.proc.pid)
        for cmd in (("HRANDFIELD", "h", "-999999999"), ("SRANDMEMBER", "s", "-999999999"),
                    ("ZRANDMEMBER", "z", "-999999999"), ("HRANDFIELD", "h", "-999999999", "WITHVALUES")):
            got, closed = raw_exchange(s.port, encode(*cmd))
            assert closed and got == b"", cmd
        if jemalloc(c):
            assert rss_bytes(s.proc.pid) < base + 256 * 1024 * 1024
        assert info_field(c, "stats", "client_output_buffer_limit_disconnections") == "4"
        assert c.cmd("PING") == "PONG"
    finally:
        s.stop()
