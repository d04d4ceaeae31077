"""RDB snapshots and loading, against Debian's redis-server 7.0.15.

Both ways: a dump that redis-server writes (every type and encoding it
has, TTLs, a stream with consumer groups and pending entries, a function
library, several databases) loads into Larder with the same contents, and a
dump Larder writes passes redis-check-rdb and loads into redis-server with
the same contents, compared key by key with ordinary commands. Then what a
snapshot taken without fork must keep: the state at its cut while clients
go on writing; -LOADING while a file loads; MISCONF after a failed save;
save points, SHUTDOWN and SIGTERM saves, DEBUG RELOAD."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from resp import Conn, Error
from server import start_larder, start_redis, wait_until
from rdbfile import file as rdb_file, length, string

FAR = 4102444800000  # 2100-01-01 in ms: TTLs that outlive the test

LIBRARY = ("#!lua name=persistlib\n"
           "redis.register_function('persist_echo', function(keys, args) return args[1] end)\n")


def dataset():
    """Commands both servers accept, building every type and encoding."""
    cmds = [
        ("SET", "s:int", "12345"), ("SET", "s:neg", "-7"), ("SET", "s:big_int", "9223372036854775807"),
        ("SET", "s:short", "hello"), ("SET", "s:raw", "x" * 100), ("SET", "s:lzf", "abcabc" * 500),
        ("SET", "s:bin", b"\x00\xff\r\n\x01"), ("SET", "s:empty", ""),
        ("SET", "s:ttl", "v"), ("PEXPIREAT", "s:ttl", str(FAR)),
        ("RPUSH", "l:small", "a", "b", "1", "2"),
        ("RPUSH", "l:big", *[f"item-{i}" for i in range(3000)]),
        ("RPUSH", "l:long", "y" * 20000, "z"),
        ("SADD", "set:int", "1", "2", "3", "-100", "70000", "5000000000"),
        ("SADD", "set:str", "a", "b", "c"),
        ("SADD", "set:bigint", *[str(i) for i in range(1000)]),
        ("ZADD", "z:small", "1", "a", "2.5", "b", "-3", "c", "inf", "d"),
        ("ZADD", "z:big", *[x for i in range(300) for x in (str(i * 0.5), f"m{i}")]),
        ("HSET", "h:small", "f1", "v1", "f2", "2", "f3", "x" * 30),
        ("HSET", "h:big", *[x for i in range(1000) for x in (f"field{i}", f"value{i}")]),
        ("HSET", "h:ttl", "a", "1"), ("PEXPIREAT", "h:ttl", str(FAR)),
        ("XADD", "st", "1-1", "name", "a", "n", "1"),
        ("XADD", "st", "1-2", "name", "b", "n", "2"),
        ("XADD", "st", "2-0", "other", "c"),
        ("XADD", "st", "3-0", "name", "d", "n", "4"),
        ("XDEL", "st", "1-2"),
        ("XGROUP", "CREATE", "st", "g1", "0"),
        ("XGROUP", "CREATE", "st", "g2", "$"),
        ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", "st", ">"),
        ("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", "st", ">"),
        ("XACK", "st", "g1", "1-1"),
        ("XGROUP", "CREATECONSUMER", "st", "g2", "carol"),
        ("SELECT", "3"), ("SET", "db3:key", "in three"), ("RPUSH", "db3:list", "p", "q"),
        ("SELECT", "0"),
    ]
    for i in range(700):
        cmds.append(("XADD", "st:big", f"{i + 1}-0", "f", f"v{i}", "g", str(i)))
    cmds.append(("XADD", "st:big", "MAXLEN", "500", "5000-0", "f", "v"))
    return cmds


def load_dataset(c):
    for cmd in dataset():
        reply = c.cmd(*cmd)
        assert not isinstance(reply, Error), (cmd, reply)
    assert c.cmd("FUNCTION", "LOAD", LIBRARY) == b"persistlib"


def describe_key(c, key):
    t = c.cmd("TYPE", key)
    d = {"type": t, "pexpiretime": c.cmd("PEXPIRETIME", key)}
    if t == "string":
        d["value"] = c.cmd("GET", key)
    elif t == "list":
        d["value"] = c.cmd("LRANGE", key, "0", "-1")
    elif t == "set":
        d["value"] = sorted(c.cmd("SMEMBERS", key))
    elif t == "zset":
        d["value"] = c.cmd("ZRANGE", key, "0", "-1", "WITHSCORES")
    elif t == "hash":
        flat = c.cmd("HGETALL", key)
        d["value"] = sorted(zip(flat[0::2], flat[1::2]))
    elif t == "stream":
        d["entries"] = c.cmd("XRANGE", key, "-", "+")
        info = c.cmd("XINFO", "STREAM", key)
        info = dict(zip(info[0::2], info[1::2]))
        d["meta"] = {k: info[k] for k in (b"length", b"last-generated-id", b"max-deleted-entry-id",
                                          b"entries-added", b"recorded-first-entry-id")}
        groups = []
        for g in c.cmd("XINFO", "GROUPS", key):
            g = dict(zip(g[0::2], g[1::2]))
            name = g[b"name"]
            consumers = sorted(dict(zip(x[0::2], x[1::2]))[b"name"] for x in c.cmd("XINFO", "CONSUMERS", key, name))
            pel = [(p[0], p[1], p[3]) for p in c.cmd("XPENDING", key, name, "-", "+", "100")]
            groups.append((name, g[b"last-delivered-id"], g[b"entries-read"], g[b"pending"], consumers, pel))
        d["groups"] = groups
    return d


def describe(c, dbs=(0, 3)):
    out = {}
    for db in dbs:
        c.cmd("SELECT", str(db))
        keys = sorted(c.cmd("KEYS", "*"))
        out[db] = {k: describe_key(c, k) for k in keys}
    c.cmd("SELECT", "0")
    return out


def check_function(c):
    libs = c.cmd("FUNCTION", "LIST")
    assert [dict(zip(lib[0::2], lib[1::2]))[b"library_name"] for lib in libs] == [b"persistlib"]
    assert c.cmd("FCALL", "persist_echo", "0", "hi") == b"hi"


def loaded(server):
    """A connection once the server's start-up load is over."""
    c = server.conn()
    wait_until(lambda: info_field(c, "loading") == "0", timeout=120)
    return c


def persistence_info(c):
    """INFO persistence as one dict: fields that show only while loading
    must be read from the same reply as `loading`, or the load can end
    between two INFO calls."""
    fields = {}
    for line in c.cmd("INFO", "persistence").decode().splitlines():
        if ":" in line:
            name, value = line.split(":", 1)
            fields[name] = value
    return fields


def info_field(c, name):
    return persistence_info(c).get(name)


def saved_copy(server, name="dump.rdb"):
    """A fresh folder holding a copy of the server's dump (the server's own
    folder goes when it stops)."""
    d = tempfile.mkdtemp(prefix="larder-dump-")
    shutil.copy(os.path.join(server.dir, name), os.path.join(d, "dump.rdb"))
    return d


def dataset_dump(server):
    """Builds the dataset on `server`, SAVEs, stops it: (what it held, a
    folder with its dump)."""
    try:
        c = server.conn()
        load_dataset(c)
        expected = describe(c)
        assert c.cmd("SAVE") == "OK"
        return expected, saved_copy(server)
    finally:
        server.stop()


def test_redis_dump_loads_into_larder():
    expected, folder = dataset_dump(start_redis())
    larder = start_larder(dir=folder)
    try:
        c = loaded(larder)
        assert describe(c) == expected
        check_function(c)
        assert info_field(c, "rdb_last_load_keys_loaded") == str(sum(len(v) for v in expected.values()))
    finally:
        larder.stop()


def test_larder_dump_loads_into_redis_and_passes_check():
    expected, folder = dataset_dump(start_larder())
    check = subprocess.run(["redis-check-rdb", os.path.join(folder, "dump.rdb")], capture_output=True, text=True)
    assert check.returncode == 0 and "RDB looks OK" in check.stdout, check.stdout + check.stderr
    redis = start_redis(dir=folder)
    try:
        c = loaded(redis)
        assert describe(c) == expected
        check_function(c)
    finally:
        redis.stop()


def test_restart_keeps_contents_without_compression_or_checksum():
    expected, folder = dataset_dump(start_larder(["--rdbcompression", "no", "--rdbchecksum", "no"]))
    with open(os.path.join(folder, "dump.rdb"), "rb") as f:
        data = f.read()
    assert data.endswith(b"\xff" + b"\x00" * 8)  # no checksum
    assert b"abcabc" * 500 in data  # no LZF
    larder = start_larder(dir=folder)
    try:
        assert describe(loaded(larder)) == expected
    finally:
        larder.stop()


def test_snapshot_keeps_the_state_of_its_cut_while_clients_write():
    """The cut's values are written, whatever clients change, delete or add
    while the shards write their keys out (rdb-key-save-delay slows the
    scan so the writes overlap it)."""
    n = 20000
    larder = start_larder(["--rdb-key-save-delay", "50", "--enable-debug-command", "yes"])
    try:
        c = larder.conn()
        assert c.cmd("DEBUG", "POPULATE", str(n), "k") == "OK"  # k:i = value:i
        c.cmd("RPUSH", "list", *[str(i) for i in range(100)])
        c.cmd("HSET", "hash", "a", "1")
        assert c.cmd("BGSAVE") == "Background saving started"
        wait_until(lambda: int(info_field(c, "current_save_keys_total") or 0) > 0
                   or info_field(c, "rdb_bgsave_in_progress") == "0")
        w = larder.conn()
        writes = [("SET", f"k:{i}", "changed") for i in range(0, n, 3)]
        writes += [("DEL", f"k:{i}") for i in range(1, n, 7)]
        writes += [("SET", f"fresh:{i}", "after the cut") for i in range(500)]
        writes += [("RPUSH", "list", "late"), ("HSET", "hash", "b", "2")]
        replies = w.pipeline(writes)
        assert not any(isinstance(r, Error) for r in replies)
        overlapped = info_field(c, "rdb_bgsave_in_progress") == "1"
        wait_until(lambda: info_field(c, "rdb_bgsave_in_progress") == "0", timeout=120)
        assert info_field(c, "rdb_last_bgsave_status") == "ok"
        folder = saved_copy(larder)
    finally:
        larder.stop()
    assert overlapped, "the writes ended before the scan did: the test saw no overlap"
    redis = start_redis(dir=folder)
    try:
        r = loaded(redis)
        assert r.cmd("DBSIZE") == n + 2
        values = r.cmd("MGET", *[f"k:{i}" for i in range(n)])
        assert values == [f"value:{i}".encode() for i in range(n)]
        assert r.cmd("EXISTS", "fresh:0") == 0
        assert r.cmd("LLEN", "list") == 100
        assert r.cmd("HGETALL", "hash") == [b"a", b"1"]
    finally:
        redis.stop()


def populated_dump(keys):
    """A folder with the dump of a larder holding DEBUG POPULATE `keys` k
    (keys k:N, values value:N)."""
    larder = start_larder(["--enable-debug-command", "yes"])
    try:
        c = larder.conn()
        assert c.cmd("DEBUG", "POPULATE", str(keys), "k") == "OK"
        assert c.cmd("SAVE") == "OK"
        return saved_copy(larder)
    finally:
        larder.stop()


def test_clients_get_loading_while_a_file_loads():
    folder = populated_dump(20000)
    larder = start_larder(["--key-load-delay", "100"], dir=folder, wait_loaded=False)  # about 2 s of loading
    try:
        c = larder.conn()
        reply = c.cmd("GET", "k:1")
        assert isinstance(reply, Error) and reply.msg.startswith("LOADING"), reply
        info = persistence_info(c)
        assert info["loading"] == "1", info
        assert float(info["loading_loaded_perc"]) < 100
        assert int(info["loading_total_bytes"]) > 0
        wait_until(lambda: info_field(c, "loading") == "0", timeout=120)
        assert c.cmd("GET", "k:1") == b"value:1"
        assert c.cmd("DBSIZE") == 20000
        assert "DB loaded from disk" in larder.read_log()
    finally:
        larder.stop()


def test_loading_reports_progress_every_interval_bytes():
    folder = populated_dump(20000)
    size = os.path.getsize(os.path.join(folder, "dump.rdb"))
    assert size < 2 << 20  # below the default interval
    # Default (2 MB, more than the file): no progress until the load is done.
    # 1024: the bytes read show while it loads.
    for interval, moves in ((None, False), (1024, True)):
        args = ["--key-load-delay", "100"]  # about 2 s of loading
        if interval:
            args += ["--loading-process-events-interval-bytes", str(interval)]
        copy = tempfile.mkdtemp(prefix="larder-dump-")  # a stopped server's dir goes with it
        shutil.copy(os.path.join(folder, "dump.rdb"), copy)
        larder = start_larder(args, dir=copy, wait_loaded=False)
        try:
            c = larder.conn()
            seen = []
            while (info := persistence_info(c))["loading"] == "1":
                seen.append(int(info["loading_loaded_bytes"]))
                time.sleep(0.05)
            assert seen, "the load ended before it was seen"
            if moves:
                assert any(0 < b < size for b in seen), seen
            else:
                assert set(seen) == {0}, seen
        finally:
            larder.stop()
    shutil.rmtree(folder, ignore_errors=True)


def test_failed_background_save_refuses_writes_until_allowed():
    larder = start_larder(["--enable-protected-configs", "yes", "--save", "3600 1"])
    gone = tempfile.mkdtemp(prefix="larder-gone-")
    try:
        c = larder.conn()
        assert c.cmd("CONFIG", "SET", "dir", gone) == "OK"
        os.rmdir(gone)
        assert c.cmd("BGSAVE") == "Background saving started"
        wait_until(lambda: info_field(c, "rdb_last_bgsave_status") == "err")
        reply = c.cmd("SET", "a", "1")
        assert isinstance(reply, Error) and reply.msg.startswith("MISCONF"), reply
        assert isinstance(c.cmd("PING"), Error)
        assert c.cmd("GET", "a") is None  # reads go on
        assert c.cmd("CONFIG", "SET", "stop-writes-on-bgsave-error", "no") == "OK"
        assert c.cmd("SET", "a", "1") == "OK"
    finally:
        larder.stop()


def test_save_point_triggers_a_background_save():
    larder = start_larder(["--save", "1 2"])
    try:
        c = larder.conn()
        c.cmd("SET", "a", "1")
        c.cmd("SET", "b", "2")
        assert int(info_field(c, "rdb_changes_since_last_save")) >= 2
        wait_until(lambda: info_field(c, "rdb_saves") == "1", timeout=60)
        assert info_field(c, "rdb_changes_since_last_save") == "0"
        assert os.path.exists(os.path.join(larder.dir, "dump.rdb"))
        assert "changes in 1 seconds. Saving..." in larder.read_log()
    finally:
        larder.stop()


def saved_by_sigterm(key, value):
    """A folder with the dump a server with a save point wrote when SIGTERM
    stopped it, after SET key value (the folder outlives the server)."""
    larder = start_larder(["--save", "3600 1"])
    folder = larder.dir
    larder.dir = tempfile.mkdtemp(prefix="larder-unused-")  # keep the real folder past stop()
    larder.conn().cmd("SET", key, value)
    larder.stop()  # SIGTERM
    return folder


def test_sigterm_and_shutdown_save_with_save_points_and_nosave_does_not():
    folder = saved_by_sigterm("kept", "by sigterm")
    assert os.path.exists(os.path.join(folder, "dump.rdb"))
    larder = start_larder(["--save", "3600 1"], dir=folder)
    c = loaded(larder)
    assert c.cmd("GET", "kept") == b"by sigterm"
    c.cmd("SET", "kept", "not saved")
    try:
        c.cmd("SHUTDOWN", "NOSAVE")
    except OSError:
        pass
    larder.proc.wait(timeout=30)
    larder.dir = tempfile.mkdtemp(prefix="larder-unused-")
    larder.stop()
    larder = start_larder(["--save", ""], dir=folder)
    try:
        c = loaded(larder)
        assert c.cmd("GET", "kept") == b"by sigterm"
        c.cmd("SET", "kept", "saved by SHUTDOWN SAVE")
        try:
            c.cmd("SHUTDOWN", "SAVE")
        except OSError:
            pass
        larder.proc.wait(timeout=30)
        larder.dir = tempfile.mkdtemp(prefix="larder-unused-")
        larder.stop()
        larder = start_larder(dir=folder)
        assert loaded(larder).cmd("GET", "kept") == b"saved by SHUTDOWN SAVE"
    finally:
        larder.stop()


def test_debug_reload_lastsave_and_bgsave_in_progress():
    larder = start_larder(["--enable-debug-command", "yes"])
    try:
        c = larder.conn()
        load_dataset(c)
        expected = describe(c)
        before = c.cmd("LASTSAVE")
        assert c.cmd("DEBUG", "RELOAD") == "OK"
        assert describe(c) == expected
        check_function(c)
        assert c.cmd("LASTSAVE") >= before
        assert isinstance(c.cmd("DEBUG", "RELOAD", "BOGUS"), Error)
        c.cmd("CONFIG", "SET", "rdb-key-save-delay", "1000000")
        assert c.cmd("BGSAVE") == "Background saving started"
        assert c.cmd("BGSAVE") == Error("ERR Background save already in progress")
        assert c.cmd("BGSAVE", "SCHEDULE") == "Background saving scheduled"
        assert info_field(c, "rdb_bgsave_in_progress") == "1"
    finally:
        larder.stop(9)


def test_function_dump_payloads_move_between_redis_and_larder():
    redis, larder = start_redis(), start_larder()
    try:
        r, c = redis.conn(), larder.conn()
        assert r.cmd("FUNCTION", "LOAD", LIBRARY) == b"persistlib"
        payload = r.cmd("FUNCTION", "DUMP")
        assert c.cmd("FUNCTION", "RESTORE", payload) == "OK"
        check_function(c)
        assert c.cmd("FUNCTION", "DUMP") == payload  # byte for byte
        assert r.cmd("FUNCTION", "RESTORE", c.cmd("FUNCTION", "DUMP"), "REPLACE") == "OK"
        bad = payload[:-1] + bytes([payload[-1] ^ 1])
        assert c.cmd("FUNCTION", "RESTORE", bad) == r.cmd("FUNCTION", "RESTORE", bad)
    finally:
        redis.stop()
        larder.stop()


def test_failed_foreground_save_answers_an_error_and_keeps_serving():
    # Redis's rdbSave: a failed SAVE or SHUTDOWN save is an error reply and a
    # log line, not a failed background save (no MISCONF); Redis's own
    # unit/shutdown makes the failure with a folder named dump.rdb.
    larder = start_larder(["--save", "3600 1"])
    try:
        c = larder.conn()
        c.cmd("SET", "a", "1")
        os.mkdir(os.path.join(larder.dir, "dump.rdb"))
        assert isinstance(c.cmd("SAVE"), Error)
        assert info_field(c, "rdb_last_bgsave_status") == "ok"
        assert c.cmd("PING") == "PONG"
        assert c.cmd("SET", "b", "2") == "OK"
        assert c.cmd("SHUTDOWN") == Error("ERR Errors trying to SHUTDOWN. Check logs.")
        assert c.cmd("PING") == "PONG"
        assert "Error moving temp DB file" in larder.read_log()
        os.rmdir(os.path.join(larder.dir, "dump.rdb"))
        assert c.cmd("SAVE") == "OK"
    finally:
        larder.stop()


def test_config_file_save_line_without_points_disables_snapshots():
    # Redis's test suite writes `save ""` into its files as "save " (no value).
    larder = start_larder(config_text="save \n")
    try:
        assert larder.conn().cmd("CONFIG", "GET", "save") == [b"save", b""]
    finally:
        larder.stop()


def test_second_sigint_during_the_shutdown_save_exits_and_removes_the_temp_file():
    larder = start_larder(["--save", "3600 1"])
    folder = larder.dir
    try:
        c = larder.conn()
        for i in range(20):
            c.cmd("SET", str(i), str(i))
        c.cmd("CONFIG", "SET", "rdb-key-save-delay", "100000")  # 2 s for 20 keys
        temp = os.path.join(folder, f"temp-{larder.proc.pid}.rdb")
        larder.proc.send_signal(signal.SIGINT)
        assert wait_until(lambda: os.path.exists(temp), timeout=20)
        larder.proc.send_signal(signal.SIGINT)
        assert larder.proc.wait(timeout=20) == 1
        assert not os.path.exists(temp)
        assert not os.path.exists(os.path.join(folder, "dump.rdb"))
        assert "You insist... exiting now." in larder.read_log()
    finally:
        larder.stop()


def test_file_with_a_wrong_checksum_does_not_start():
    folder = saved_by_sigterm("a", "1")
    path = os.path.join(folder, "dump.rdb")
    with open(path, "r+b") as f:
        f.seek(-8, os.SEEK_END)
        f.write(b"foobar00")
    with pytest.raises(RuntimeError) as e:
        start_larder(dir=folder)
    assert "RDB CRC error" in str(e.value)
    assert str(e.value).rstrip().endswith("Terminating server after rdb file reading failure.")
    shutil.rmtree(folder, ignore_errors=True)



def test_empty_collections_in_a_file_are_skipped_as_redis_does():
    # Older Redis versions could leave an empty set, hash or list in a dump;
    # Redis 7.0 skips such a key (logging it) and loads the rest. The same
    # hand-made file goes into redis-server and larder.
    records = b"\xfe" + length(0)
    records += b"\x02" + string("empty-set") + length(0)           # set, 0 members
    records += b"\xfc" + (1800000000000).to_bytes(8, "little")     # a TTL on the next key
    records += b"\x04" + string("empty-hash") + length(0)          # hash, 0 fields
    records += b"\x12" + string("empty-list") + length(0)          # quicklist 2, 0 nodes
    records += b"\x00" + string("kept") + string("v")              # a string
    records += b"\x02" + string("set") + length(1) + string("m")   # a set of one
    seen = {}
    for name, start in (("redis", start_redis), ("larder", start_larder)):
        folder = tempfile.mkdtemp(prefix="larder-empty-keys-")
        with open(os.path.join(folder, "dump.rdb"), "wb") as f:
            f.write(rdb_file(records))
        srv = start(dir=folder)
        try:
            c = loaded(srv)
            seen[name] = (c.cmd("DBSIZE"), sorted(c.cmd("KEYS", "*")), c.cmd("GET", "kept"),
                          c.cmd("SMEMBERS", "set"), c.cmd("TTL", "kept"))
            log = srv.read_log()
        finally:
            srv.stop()
        assert "skipping empty key: empty-set" in log, log
    assert seen["larder"] == seen["redis"]
    assert seen["larder"] == (2, [b"kept", b"set"], b"v", [b"m"], -1)


def test_debug_reload_noflush_fails_on_an_existing_library_unless_merge():
    larder = start_larder(["--enable-debug-command", "yes"])
    try:
        c = larder.conn()
        assert c.cmd("FUNCTION", "LOAD", LIBRARY) == b"persistlib"
        assert c.cmd("DEBUG", "RELOAD") == "OK"
        assert c.cmd("DEBUG", "RELOAD", "NOFLUSH") == Error(
            "ERR Error trying to load the RDB dump, check server logs.")
        assert "Library 'persistlib' already exists" in larder.read_log()
        assert c.cmd("DEBUG", "RELOAD", "NOFLUSH", "MERGE") == "OK"
        check_function(c)
    finally:
        larder.stop()
