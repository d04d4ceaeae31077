"""The process as operators and client libraries see it: config, signals,
limits, expiry, and the standard Redis tools and clients."""
import os
import signal
import subprocess
import threading
import time

import pytest
from resp import Conn, Error, encode
from server import larder_bin, start_larder, wait_until


def info_fields(c, section=None):
    raw = c.cmd("INFO", section) if section else c.cmd("INFO")
    out = {}
    for line in raw.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def test_config_file_and_overrides():
    s = start_larder(config_text="# test config\nmaxclients 123\ntimeout 0\n", args=["--maxclients", "77"])
    try:
        c = s.conn()
        assert c.cmd("CONFIG", "GET", "maxclients") == [b"maxclients", b"77"]
        assert c.cmd("CONFIG", "SET", "timeout", "5") == "OK"
        assert c.cmd("CONFIG", "REWRITE") == "OK"
        text = open(s.config_path).read()
        assert "# test config" in text and "timeout 5" in text and "maxclients 77" in text
        c.close()
    finally:
        s.stop()


def test_bad_config_fails_naming_the_line(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_text("port 7777\nmaxclients lots\n")
    r = subprocess.run([larder_bin(), str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "at line 2" in r.stderr and "maxclients lots" in r.stderr
    assert "couldn't be parsed into an integer" in r.stderr
    r = subprocess.run([larder_bin(), "--no-such-option", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Bad directive" in r.stderr


def test_sigterm_shuts_down_cleanly():
    s = start_larder()
    c = s.conn()
    c.cmd("SET", "a", "1")
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=30) == 0
    log = s.read_log()
    assert "Received SIGTERM" in log and "bye bye" in log
    s.stop()


def test_idle_server_uses_no_cpu():
    s = start_larder()
    try:
        def cpu():
            with open(f"/proc/{s.proc.pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            return int(parts[11]) + int(parts[12])  # utime + stime in ticks
        time.sleep(0.5)
        before = cpu()
        time.sleep(3)
        used = cpu() - before
        # Timers tick at 100 Hz per shard, but an idle second must cost well
        # under 10% of a core (ticks are 10 ms each).
        assert used <= 30, used
    finally:
        s.stop()


def test_maxclients():
    s = start_larder(args=["--maxclients", "3"])
    try:
        first = s.conn()
        # The start-up probe's connection may still be closing: wait for it.
        assert wait_until(lambda: info_fields(first, "clients")["connected_clients"] == "1")
        conns = [first, s.conn(), s.conn()]
        for c in conns:
            assert c.cmd("PING") == "PONG"
        extra = s.conn()
        assert extra.read() == Error("ERR max number of clients reached")
        extra.close()
        for c in conns:
            c.close()
    finally:
        s.stop()


def test_timeout_closes_idle_clients():
    s = start_larder(args=["--timeout", "1"])
    try:
        c = s.conn()
        assert c.cmd("PING") == "PONG"
        c.sock.settimeout(30)
        assert c.sock.recv(10) == b""
    finally:
        s.stop()


def test_requirepass_and_auth():
    s = start_larder(args=["--requirepass", "secret"])
    try:
        c = s.conn()
        assert c.cmd("GET", "a") == Error("NOAUTH Authentication required.")
        assert c.cmd("AUTH", "wrong") == Error("WRONGPASS invalid username-password pair or user is disabled.")
        assert c.cmd("AUTH", "secret") == "OK"
        assert c.cmd("SET", "a", "1") == "OK"
        c2 = s.conn()
        r = c2.cmd("HELLO", "3", "AUTH", "default", "secret")
        assert isinstance(r, dict)
        assert c2.cmd("GET", "a") == b"1"
        assert c2.cmd("RESET") == "RESET"
        assert c2.cmd("GET", "a") == Error("NOAUTH Authentication required.")
    finally:
        s.stop()


def test_active_expiry_reclaims_a_million_keys():
    s = start_larder()
    try:
        c = s.conn()
        base = int(info_fields(c, "memory")["used_memory"])
        # Load 1,000,000 keys with a 1-second TTL through a pipeline.
        batch = []
        for i in range(1_000_000):
            batch.append(encode("SET", f"exp:{i}", "v" * 16, "PX", "1000"))
            if len(batch) == 10000:
                c.send_raw(b"".join(batch))
                for _ in batch:
                    assert c.read() == "OK"
                batch = []
        assert wait_until(lambda: c.cmd("DBSIZE") == 0, timeout=60), c.cmd("DBSIZE")
        used = int(info_fields(c, "memory")["used_memory"])
        assert used < base + 4 * 1024 * 1024, (base, used)
        assert int(info_fields(c, "stats")["expired_keys"]) == 1_000_000
    finally:
        s.stop()


def test_scan_sees_every_key_across_shards(conn):
    for i in range(0, 5000, 500):
        conn.cmd("MSET", *[x for j in range(i, i + 500) for x in (f"scan:{j}", "v")])
    seen = set()
    cursor = b"0"
    while True:
        cursor, keys = conn.cmd("SCAN", cursor, "COUNT", "100")
        seen.update(keys)
        # Keys added and removed during the scan must not hide the stable ones.
        conn.cmd("SET", f"churn:{len(seen)}", "x")
        if cursor == b"0":
            break
    assert {f"scan:{j}".encode() for j in range(5000)} <= seen
    matched, cursor = set(), b"0"
    while True:
        cursor, keys = conn.cmd("SCAN", cursor, "MATCH", "scan:1?", "COUNT", "1000")
        matched.update(keys)
        if cursor == b"0":
            break
    assert matched == {f"scan:1{d}".encode() for d in range(10)}
    assert conn.cmd("SCAN", "abc") == Error("ERR invalid cursor")


def test_monitor_sees_commands_from_all_threads(larder):
    m = larder.conn()
    assert m.cmd("MONITOR") == "OK"
    c = larder.conn()
    for i in range(20):
        c.cmd("SET", f"mon:{i}", "v")
    lines = []
    while len(lines) < 20:
        line = m.read()
        if '"set"' in line.lower():
            lines.append(line)
    assert any('"mon:19"' in l for l in lines)
    m.close()
    c.close()


def test_client_list_kill_and_names(larder):
    a = larder.conn()
    b = larder.conn()
    assert b.cmd("CLIENT", "SETNAME", "victim") == "OK"
    bid = b.cmd("CLIENT", "ID")
    text = a.cmd("CLIENT", "LIST").decode()
    assert "name=victim" in text
    assert a.cmd("CLIENT", "KILL", "ID", str(bid)) == 1
    b.sock.settimeout(10)
    assert b.sock.recv(10) == b""
    assert a.cmd("CLIENT", "SETNAME", "bad name") == Error(
        "ERR Client names cannot contain spaces, newlines or special characters.")
    a.close()


def test_client_list_counts_the_running_command_as_query_buffer(larder):
    # Redis reports the command being executed as still in the query buffer
    # (its Tcl suite checks qbuf=26 for CLIENT LIST sent alone).
    c = larder.conn()
    me = [l for l in c.cmd("CLIENT", "LIST").decode().splitlines() if "cmd=client|list" in l]
    assert len(me) == 1
    assert " qbuf=%d " % len(encode("CLIENT", "LIST")) in me[0]
    other = larder.conn()
    other.cmd("PING")
    idle = [l for l in c.cmd("CLIENT", "LIST").decode().splitlines() if "cmd=ping" in l]
    assert len(idle) == 1 and " qbuf=0 " in idle[0]
    c.close()
    other.close()


def test_client_pause_holds_writes(larder):
    a = larder.conn()
    b = larder.conn()
    assert a.cmd("CLIENT", "PAUSE", "500", "WRITE") == "OK"
    t0 = time.time()
    assert b.cmd("GET", "paused") is None
    assert b.cmd("SET", "paused", "1") == "OK"
    assert time.time() - t0 >= 0.3
    a.close()
    b.close()


def test_info_and_commandstats(conn):
    conn.cmd("SET", "i", "1")
    conn.cmd("GET", "i")
    conn.cmd("GET", "nope")
    f = info_fields(conn, "all")
    for field in ["redis_version", "connected_clients", "used_memory", "used_memory_human", "maxmemory_policy",
                  "keyspace_hits", "keyspace_misses", "expired_keys", "evicted_keys", "total_commands_processed",
                  "instantaneous_ops_per_sec", "cmdstat_get", "db0"]:
        assert field in f, field
    assert "calls=" in f["cmdstat_get"]


def test_slowlog_and_latency(conn):
    conn.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")
    conn.cmd("SLOWLOG", "RESET")
    conn.cmd("SET", "slow", "1")
    entries = conn.cmd("SLOWLOG", "GET")
    assert any(e[3][:1] == [b"SET"] for e in entries)
    assert conn.cmd("SLOWLOG", "LEN") >= 1
    conn.cmd("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    # Whether a command crosses 1 ms is timing, so only the reply shape is checked here.
    conn.cmd("LATENCY", "RESET")
    conn.cmd("CONFIG", "SET", "latency-monitor-threshold", "1")
    conn.cmd("KEYS", "*")  # may or may not take 1 ms: only the reply's shape is certain
    latest = conn.cmd("LATENCY", "LATEST")
    assert isinstance(latest, list) and all(len(e) == 4 for e in latest)
    conn.cmd("CONFIG", "SET", "latency-monitor-threshold", "0")
    assert conn.cmd("LATENCY", "RESET") >= 0


def test_redis_py_client(larder):
    import redis
    r = redis.Redis(port=larder.port)
    r.set("py", "hello", ex=100)
    assert r.get("py") == b"hello"
    assert 0 < r.ttl("py") <= 100
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.incr("pycounter")
    assert p.execute()[-1] == 100
    assert r.mget(["py", "nope"]) == [b"hello", None]
    assert r.info()["redis_version"]
    assert list(r.scan_iter(match="py*"))
    r3 = redis.Redis(port=larder.port, protocol=3) if "protocol" in redis.Redis.__init__.__code__.co_varnames else r
    assert r3.ping()


def test_redis_cli_interactive_and_pipe(larder, tmp_path):
    out = subprocess.run(["redis-cli", "-p", str(larder.port), "SET", "cli", "x"], capture_output=True, text=True)
    assert out.stdout.strip() == "OK"
    # --pipe mass insertion (raw RESP on stdin).
    data = b"".join(encode("SET", f"pipe:{i}", str(i)) for i in range(10000))
    r = subprocess.run(["redis-cli", "-p", str(larder.port), "--pipe"], input=data, capture_output=True, timeout=60)
    assert b"errors: 0, replies: 10000" in r.stdout, r.stdout
    # Interactive mode (commands on stdin, a terminal is not required).
    r = subprocess.run(["redis-cli", "-p", str(larder.port)], input=b"GET pipe:42\nDBSIZE\n", capture_output=True)
    assert b"42" in r.stdout


def test_redis_benchmark_runs(larder):
    r = subprocess.run(["redis-benchmark", "-p", str(larder.port), "-t", "set,get,incr,mset", "-n", "20000",
                        "-c", "20", "-P", "8", "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0
    assert "SET" in r.stdout and "GET" in r.stdout


def test_commands_that_finish_on_other_shards_are_timed_where_they_ran():
    # DEBUG SLEEP parks every shard; KEYS scans each shard. Their time is
    # spent on the shards, after the client's thread handed them over: the
    # slow log, the latency monitor and commandstats must still see it.
    srv = start_larder(["--enable-debug-command", "yes"], threads=2)
    try:
        c = srv.conn()
        assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "100000") == "OK"
        assert c.cmd("CONFIG", "SET", "latency-monitor-threshold", "100") == "OK"
        assert c.cmd("DEBUG", "SLEEP", "0.2") == "OK"
        entries = c.cmd("SLOWLOG", "GET")
        assert len(entries) == 1, entries
        assert entries[0][3] == [b"DEBUG", b"SLEEP", b"0.2"] and entries[0][2] >= 200000, entries
        latest = {e[0]: e for e in c.cmd("LATENCY", "LATEST")}
        assert latest[b"command"][2] >= 200, latest
        stats = c.cmd("INFO", "commandstats").decode()
        line = next(x for x in stats.splitlines() if x.startswith("cmdstat_debug:"))
        assert int(line.split("usec=")[1].split(",")[0]) >= 200000, line
        # Every command is logged once, however many shards it touched.
        assert c.cmd("SLOWLOG", "RESET") == "OK"
        assert c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0") == "OK"
        c.cmd("MSET", "a", "1", "b", "2", "c", "3")
        c.cmd("KEYS", "*")
        c.cmd("DBSIZE")
        names = [e[3][0].lower() for e in c.cmd("SLOWLOG", "GET", "-1")]
        for cmd in (b"mset", b"keys", b"dbsize"):
            assert names.count(cmd) == 1, names
    finally:
        srv.stop()
