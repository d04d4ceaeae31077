"""Wire protocol: pipelining, partial reads, RESP3, inline commands, limits and
malformed input, against the real binary over a socket."""
import socket
import time

from resp import Conn, Error, encode


def test_ping_and_echo(conn):
    assert conn.cmd("PING") == "PONG"
    assert conn.cmd("PING", "hi") == b"hi"
    assert conn.cmd("ECHO", "x y") == b"x y"
    assert conn.cmd("PING", "a", "b") == Error("ERR wrong number of arguments for 'ping' command")


def test_deep_pipeline_keeps_order(conn):
    n = 20000
    cmds = []
    for i in range(n):
        cmds.append(("SET", f"key:{i}", f"value:{i}"))
        cmds.append(("GET", f"key:{i}"))
    replies = conn.pipeline(cmds)
    for i in range(n):
        assert replies[2 * i] == "OK"
        assert replies[2 * i + 1] == f"value:{i}".encode()


def test_pipeline_mixing_local_remote_and_server_commands(conn):
    cmds = []
    for i in range(500):
        cmds += [("INCR", f"c{i % 7}"), ("DBSIZE",), ("MGET", "c0", "c1", "c2"), ("PING",)]
    replies = conn.pipeline(cmds)
    counts = {}
    for i in range(500):
        k = i % 7
        counts[k] = counts.get(k, 0) + 1
        assert replies[4 * i] == counts[k]
        assert replies[4 * i + 1] == len(counts)
        assert replies[4 * i + 2] == [str(counts[j]).encode() if j in counts else None for j in range(3)]
        assert replies[4 * i + 3] == "PONG"


def test_partial_reads_byte_by_byte(conn):
    data = encode("SET", "partial", "x" * 100) + encode("GET", "partial")
    for b in data:
        conn.send_raw(bytes([b]))
    assert conn.read() == "OK"
    assert conn.read() == b"x" * 100


def test_inline_commands(larder):
    c = larder.conn()
    c.send_raw(b"SET inl \"hello world\"\r\nGET inl\r\n\r\nPING\n")
    assert c.read() == "OK"
    assert c.read() == b"hello world"
    assert c.read() == "PONG"
    c.close()


def test_resp3_hello(larder):
    c = larder.conn()
    r = c.cmd("HELLO", "3")
    assert isinstance(r, dict)
    fields = dict(r["map"])
    assert fields[b"proto"] == 3
    assert fields[b"server"] == b"redis"
    assert c.cmd("GET", "missing-resp3") is None
    c.send_raw(encode("GET", "missing-resp3"))
    assert c.buf == b""
    raw = c.sock.recv(100)
    assert raw == b"_\r\n"
    assert c.cmd("HELLO", "4") == Error("NOPROTO unsupported protocol version")
    r2 = c.cmd("HELLO", "2", "SETNAME", "me")  # RESP2: a flat array
    assert isinstance(r2, list) and r2[r2.index(b"proto") + 1] == 2
    assert c.cmd("CLIENT", "GETNAME") == b"me"
    c.close()


def test_huge_argument(conn):
    big = b"v" * (20 * 1024 * 1024)
    assert conn.cmd("SET", "big", big) == "OK"
    assert conn.cmd("STRLEN", "big") == len(big)
    assert conn.cmd("GET", "big") == big
    assert conn.cmd("APPEND", "big", "tail") == len(big) + 4


def assert_closed_after_error(c, expected):
    assert c.read() == Error(expected)
    c.sock.settimeout(10)
    try:
        assert c.sock.recv(1) == b""
    except ConnectionResetError:
        pass


def test_malformed_input_gets_redis_error_and_close(larder):
    cases = [
        (b"*x\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*1\r\n+foo\r\n", "ERR Protocol error: expected '+', got '+'".replace("'+', got", "'$', got")),
        (b"*1\r\n$-5\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\n$999999999999\r\n", "ERR Protocol error: invalid bulk length"),
        (b"SET \"a\r\n", "ERR Protocol error: unbalanced quotes in request"),
        (b"a" * (70 * 1024), "ERR Protocol error: too big inline request"),
    ]
    for data, err in cases:
        c = larder.conn()
        c.send_raw(data)
        assert_closed_after_error(c, err)
        c.close()
    # The server is still fine.
    c = larder.conn()
    assert c.cmd("PING") == "PONG"
    c.close()


def test_unknown_command_and_arity(conn):
    assert conn.cmd("NOSUCH", "a", "b") == Error("ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' ")
    assert conn.cmd("GET") == Error("ERR wrong number of arguments for 'get' command")
    assert conn.cmd("CONFIG") == Error("ERR wrong number of arguments for 'config' command")
    assert conn.cmd("CONFIG", "NOPE") == Error("ERR unknown subcommand 'NOPE'. Try CONFIG HELP.")
    # COMMAND alone is a command (every command's info), as in Redis.
    everything = conn.cmd("COMMAND")
    assert isinstance(everything, list) and len(everything) == conn.cmd("COMMAND", "COUNT")
    assert conn.cmd("CLUSTER") == Error("ERR wrong number of arguments for 'cluster' command")
    conn.cmd("SET", "s", "1")
    assert conn.cmd("SET", "s", "1", "EX", "0") == Error("ERR invalid expire time in 'set' command")


def test_many_clients_at_once(larder):
    clients = [larder.conn() for _ in range(200)]
    for i, c in enumerate(clients):
        c.send_raw(encode("SET", f"client:{i}", str(i)))
    for c in clients:
        assert c.read() == "OK"
    for i, c in enumerate(clients):
        assert c.cmd("GET", f"client:{i}") == str(i).encode()
    for c in clients:
        c.close()


def test_cross_shard_mget_mset_atomic(conn, larder):
    keys = [f"k{i}" for i in range(100)]
    args = []
    for k in keys:
        args += [k, "v-" + k]
    assert conn.cmd("MSET", *args) == "OK"
    assert conn.cmd("MGET", *keys, "missing") == [("v-" + k).encode() for k in keys] + [None]
    assert conn.cmd("DEL", *keys[:50], "missing") == 50
    assert conn.cmd("EXISTS", *keys) == 50
    assert conn.cmd("MSETNX", "k0", "x", "k99", "y") == 0
    assert conn.cmd("MSETNX", "k0", "x", "k1", "y") == 1
    # A reader never sees half of an MSET: every MGET returns one generation.
    import threading
    assert conn.cmd("MSET", *[x for k in keys for x in (k, "0")]) == "OK"
    stop = threading.Event()
    torn = []

    def writer():
        w = larder.conn()
        gen = 0
        while not stop.is_set():
            gen += 1
            w.cmd("MSET", *[x for k in keys for x in (k, str(gen))])
        w.close()

    t = threading.Thread(target=writer)
    t.start()
    r = larder.conn()
    deadline = time.time() + 3
    while time.time() < deadline:
        vals = r.cmd("MGET", *keys)
        if len(set(vals)) != 1:
            torn.append(vals)
            break
    stop.set()
    t.join()
    r.close()
    assert not torn


def test_query_buffer_limit_closes_client(larder):
    c = larder.conn()
    assert c.cmd("CONFIG", "SET", "client-query-buffer-limit", "1mb") == "OK"
    try:
        c2 = larder.conn()
        c2.send_raw(b"*2\r\n$3\r\nGET\r\n$100000000\r\n")
        try:
            for _ in range(40):
                c2.send_raw(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        c2.sock.settimeout(10)
        try:
            assert c2.sock.recv(100) == b""
        except ConnectionResetError:
            pass
        c2.close()
    finally:
        assert c.cmd("CONFIG", "SET", "client-query-buffer-limit", "1gb") == "OK"
        c.close()


def test_quit_closes_after_reply(larder):
    c = larder.conn()
    c.send_raw(encode("SET", "q", "1") + encode("QUIT") + encode("GET", "q"))
    assert c.read() == "OK"
    assert c.read() == "OK"
    c.sock.settimeout(10)
    assert c.sock.recv(100) == b""
    c.close()


def test_socket_fuzz_short_run():
    """Random bytes and broken frames over many connections: the server lives
    (and, in the sanitizer build, reports nothing). fuzz/socket_fuzz.py runs
    the same for longer."""
    import subprocess
    import sys
    from server import ROOT, larder_bin
    r = subprocess.run([sys.executable, f"{ROOT}/fuzz/socket_fuzz.py", "--seconds", "10", "--bin", larder_bin()],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
