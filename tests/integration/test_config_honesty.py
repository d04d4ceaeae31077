"""Every setting is honoured or refused (issue 15, "Honesty").

CONFIG GET * must list only settings classified below: HONOURED (Larder acts
on the value), INERT (accepted, with the reason it changes nothing that a
user would miss; docs/compatibility.md, "Settings Larder accepts but does
not act on", has the same table) or PERSISTENCE (being built by issue 15 on
other branches; they move to HONOURED as they land). A new setting fails
test_every_setting_is_classified until it is put in one of them.
REFUSED lists settings of which Larder accepts only the value it does (off):
any other value is an error, on CONFIG SET, in the config file and on the
command line alike.

Real server, real sockets."""
import re
import shutil
import subprocess

import pytest

from resp import Conn, Error
from server import start_larder

# Larder acts on these (where, in a word).
HONOURED = {
    "save": "save points (engine/persistence.cc Cron), SHUTDOWN and SIGTERM save",
    "dbfilename": "SAVE, BGSAVE, loading at start",
    "rdbcompression": "LZF strings in RDB files and DUMP payloads",
    "rdbchecksum": "the RDB file's CRC-64 trailer",
    "stop-writes-on-bgsave-error": "MISCONF after a failed background save",
    "rdb-key-save-delay": "a snapshot's scan pace (test knob)",
    "key-load-delay": "a load's pace (test knob)",
    "loading-process-events-interval-bytes": "how often a load updates INFO loading_*",
    "acl-pubsub-default": "ACL SETUSER / new users",
    "aclfile": "ACL LOAD/SAVE",
    "acllog-max-len": "ACL LOG",
    "activedefrag": "active defragmentation (engine/defrag.h); refused where the build has no jemalloc "
                    "(sanitizers), as Redis without its jemalloc refuses it",
    "active-defrag-cycle-max": "the CPU share of a pass at threshold-upper",
    "active-defrag-cycle-min": "the CPU share of a pass at threshold-lower",
    "active-defrag-ignore-bytes": "no pass below this many bytes of fragmentation",
    "active-defrag-threshold-lower": "no pass below this percent of fragmentation",
    "active-defrag-threshold-upper": "the fragmentation at which a pass takes cycle-max",
    "active-defrag-max-scan-fields": "hash and set tables with more members are not walked member by member",
    "always-show-logo": "start-up banner",
    "bind": "listening sockets (CONFIG SET listens again)",
    "busy-reply-threshold": "BUSY for long scripts",
    "lua-time-limit": "alias of busy-reply-threshold",
    "cache-invalidation-channel": "PostgreSQL LISTEN channel",
    "client-output-buffer-limit": "normal and pubsub classes (slave: no replicas exist)",
    "client-query-buffer-limit": "query buffer, MULTI queue",
    "daemonize": "start-up",
    "databases": "start-up",
    "dir": "working directory, journal, files written",
    "enable-cache-rule-command": "CACHE RULE ADD/DEL",
    "enable-debug-command": "DEBUG",
    "enable-protected-configs": "CONFIG SET of dir, dbfilename",
    "hash-max-listpack-entries": "hash encoding",
    "hash-max-ziplist-entries": "alias",
    "hash-max-listpack-value": "hash encoding",
    "hash-max-ziplist-value": "alias",
    "hll-sparse-max-bytes": "HyperLogLog encoding",
    "io-threads": "only 1 (REFUSED_AT_STARTUP): shard threads do their own I/O",
    "jemalloc-bg-thread": "jemalloc background purging",
    "latency-monitor-threshold": "LATENCY",
    "latency-tracking": "LATENCY HISTOGRAM",
    "lfu-decay-time": "LFU eviction",
    "lfu-log-factor": "LFU eviction",
    "logfile": "start-up",
    "loglevel": "log",
    "lua-enable-deprecated-api": "Lua",
    "maxclients": "accept",
    "maxmemory": "eviction, OOM",
    "maxmemory-clients": "only 0 (REFUSED)",
    "maxmemory-eviction-tenacity": "eviction",
    "maxmemory-policy": "eviction",
    "maxmemory-samples": "eviction",
    "notify-keyspace-events": "keyspace notifications",
    "pidfile": "start-up",
    "port": "listening sockets",
    "protected-mode": "accept",
    "proto-max-bulk-len": "parser, string commands",
    "requirepass": "default user",
    "set-max-intset-entries": "set encoding",
    "slowlog-log-slower-than": "SLOWLOG",
    "slowlog-max-len": "SLOWLOG",
    "stream-node-max-bytes": "stream nodes",
    "stream-node-max-entries": "stream nodes",
    "tcp-backlog": "listen(2)",
    "tcp-keepalive": "accepted TCP connections",
    "threads": "shard threads",
    "timeout": "idle clients closed",
    "tls-auth-clients": "TLS accept",
    "tls-ca-cert-dir": "TLS context",
    "tls-ca-cert-file": "TLS context",
    "tls-cert-file": "TLS context",
    "tls-ciphers": "TLS context",
    "tls-ciphersuites": "TLS context",
    "tls-cluster": "only no (REFUSED)",
    "tls-dh-params-file": "TLS context",
    "tls-key-file": "TLS context",
    "tls-key-file-pass": "TLS context",
    "tls-port": "TLS listening sockets",
    "tls-prefer-server-ciphers": "TLS context",
    "tls-protocols": "TLS context",
    "tls-replication": "only no (REFUSED)",
    "tls-session-cache-size": "TLS context",
    "tls-session-cache-timeout": "TLS context",
    "tls-session-caching": "TLS context",
    "tracking-table-max-keys": "CLIENT TRACKING",
    "unixsocket": "Unix-domain listener",
    "unixsocketperm": "Unix-domain listener",
    "lazyfree-lazy-eviction": "evicted big values freed on the lazy-free thread (keyspace/lazy_free.h)",
    "lazyfree-lazy-expire": "expired big values freed on the lazy-free thread",
    "lazyfree-lazy-server-del": "big values a command deletes or overwrites freed on the lazy-free thread",
    "lazyfree-lazy-user-del": "DEL frees big values on the lazy-free thread",
    "lazyfree-lazy-user-flush": "FLUSHALL/FLUSHDB without SYNC free on the lazy-free thread",
    "list-max-listpack-size": "the size of a list's packed nodes (ds/quick_list.h)",
    "list-max-ziplist-size": "alias",
    "list-compress-depth": "a list's interior nodes LZF-compressed (ds/quick_list.h)",
    "zset-max-listpack-entries": "zset encoding",
    "zset-max-ziplist-entries": "alias",
    "zset-max-listpack-value": "zset encoding",
    "zset-max-ziplist-value": "alias",
}

# Accepted (Redis's values, ranges and errors) and changing nothing; why a
# user loses nothing by it.
INERT = {
    "active-expire-effort": "the expiry cycle has a fixed budget (1 ms every 10 ms per shard); "
                            "reads never see an expired key either way",
    "activerehashing": "tables always rehash a few steps every 10 ms; Redis's 'no' only saves that CPU",
    "dynamic-hz": "the crons run at fixed rates, not scaled by the number of clients",
    "hz": "shown by INFO; expiry runs at 100 Hz (what hz 100 asks for), client timeouts every 100 ms",
    "enable-module-command": "Larder has no modules and no MODULE command: it guards nothing",
    "crash-log-enabled": "Larder writes no crash report (a stack trace) to turn off",
    "crash-memcheck-enabled": "Larder runs no memory test after a crash",
    "use-exit-on-panic": "Larder has no panic handler that could exit instead of aborting",
    "sanitize-dump-payload": "RESTORE always validates a payload deeply (rdb/reader.cc): 'no' checks more, never less",
}

# Of those, set at start-up only (as in Redis).
INERT_IMMUTABLE = {"enable-module-command", "use-exit-on-panic"}

# Persistence: being implemented in issue 15 (other branches). Never inert:
# each is to be honoured or refused.
PERSISTENCE = {
    "appendonly", "appendfsync", "appenddirname", "appendfilename",
    "aof-load-truncated", "aof-use-rdb-preamble", "aof-timestamp-enabled", "aof-rewrite-incremental-fsync",
    "rdb-save-incremental-fsync",
    "auto-aof-rewrite-percentage", "auto-aof-rewrite-min-size",
}

# Settable at runtime; this value is refused with this reason, and the
# setting keeps its value.
REFUSED = {
    "maxmemory-clients": ("10mb", "Larder does not evict clients (maxmemory-clients), only 0 is accepted"),
    "tls-replication": ("yes", "Larder has no replication, tls-replication cannot be enabled"),
    "tls-cluster": ("yes", "Larder has no cluster bus, tls-cluster cannot be enabled"),
}
# Immutable (CONFIG SET refuses any value); refused at start-up.
REFUSED_AT_STARTUP = {
    "io-threads": ("4", "Larder has no I/O threads: each shard thread does its own I/O (set 'threads' instead)"),
}

PERSISTENCE_NAME = re.compile(r"^(save|append.*|aof-.*|rdb.*|dbfilename|stop-writes-on-bgsave-error)$")


def config_get_all(conn):
    reply = conn.cmd("CONFIG", "GET", "*")
    return {reply[i].decode(): reply[i + 1].decode() for i in range(0, len(reply), 2)}


def test_lists_are_consistent():
    assert not set(HONOURED) & set(INERT)
    assert not set(HONOURED) & PERSISTENCE
    assert not set(INERT) & PERSISTENCE
    assert all(reason.strip() for reason in INERT.values())
    # A persistence setting is never among the inert ones.
    assert not [n for n in INERT if PERSISTENCE_NAME.match(n)]
    assert set(REFUSED) <= set(HONOURED) | set(INERT)
    assert set(REFUSED_AT_STARTUP) <= set(HONOURED) | set(INERT)
    assert INERT_IMMUTABLE <= set(INERT)


def test_every_setting_is_classified(conn):
    names = set(config_get_all(conn))
    classified = set(HONOURED) | set(INERT) | PERSISTENCE
    unclassified = sorted(names - classified)
    assert not unclassified, f"settings in CONFIG GET * that test_config_honesty.py does not classify: {unclassified}"
    gone = sorted(classified - names)
    assert not gone, f"classified settings CONFIG GET * no longer lists: {gone}"


def test_inert_settings_accept_their_value(conn):
    # Accepted: a Redis config or test that sets them keeps working.
    values = config_get_all(conn)
    for name in set(INERT) - INERT_IMMUTABLE:
        assert conn.cmd("CONFIG", "SET", name, values[name]) == "OK", name
    assert conn.cmd("CONFIG", "SET", "dynamic-hz", "no") == "OK"
    assert conn.cmd("CONFIG", "SET", "dynamic-hz", values["dynamic-hz"]) == "OK"


def test_immutable_inert_settings_accepted_at_startup():
    s = start_larder(args=["--enable-module-command", "yes"], threads=1)
    try:
        c = s.conn()
        assert c.cmd("CONFIG", "GET", "enable-module-command") == [b"enable-module-command", b"yes"]
        c.close()
    finally:
        s.stop()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_values_refused_by_config_set(conn, name):
    bad, reason = REFUSED[name]
    before = conn.cmd("CONFIG", "GET", name)
    err = conn.cmd("CONFIG", "SET", name, bad)
    assert isinstance(err, Error), (name, err)
    assert err.msg.startswith(f"ERR CONFIG SET failed (possibly related to argument '{name}') - "), err.msg
    assert reason in err.msg, err.msg
    assert conn.cmd("CONFIG", "GET", name) == before
    assert conn.cmd("CONFIG", "SET", name, before[1]) == "OK"


@pytest.mark.parametrize("name", sorted(set(REFUSED) | set(REFUSED_AT_STARTUP)))
def test_refused_values_refused_at_startup(name):
    bad, reason = {**REFUSED, **REFUSED_AT_STARTUP}[name]
    with pytest.raises(RuntimeError) as e:
        s = start_larder(args=[f"--{name}", bad], threads=1)
        s.stop()
    assert reason in str(e.value), str(e.value)


def test_io_threads_one_accepted_and_immutable():
    s = start_larder(config_text="io-threads 1\n", threads=1)
    try:
        c = s.conn()
        assert c.cmd("CONFIG", "GET", "io-threads") == [b"io-threads", b"1"]
        assert c.cmd("CONFIG", "SET", "io-threads", "1") == Error(
            "ERR CONFIG SET failed (possibly related to argument 'io-threads') - can't set immutable config")
        c.close()
    finally:
        s.stop()


def keepalive_of(server_port, client_port):
    """The keepalive timer ss shows on the server's end of the connection
    from client_port: seconds left, or None without keepalive."""
    out = subprocess.run(["ss", "-tnoH", "state", "established", f"( sport = :{server_port} )"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if not re.search(rf":{client_port}\s", line + " "):
            continue
        m = re.search(r"timer:\(keepalive,(?:(\d+)min)?(?:(\d+)(?:\.\d+)?sec)?(?:(\d+)ms)?", line)
        if not m:
            return None
        return int(m.group(1) or 0) * 60 + int(m.group(2) or 0)
    raise AssertionError(f"no connection from port {client_port} in ss's output:\n{out}")


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read socket timers")
def test_tcp_keepalive_honoured(larder):
    admin = larder.conn()
    try:
        def probe():
            c = Conn(larder.port)
            assert c.cmd("PING") == "PONG"  # accepted and set up by the server
            left = keepalive_of(larder.port, c.sock.getsockname()[1])
            c.close()
            return left

        assert admin.cmd("CONFIG", "GET", "tcp-keepalive") == [b"tcp-keepalive", b"300"]
        left = probe()
        assert left is not None and 200 <= left <= 300, left
        assert admin.cmd("CONFIG", "SET", "tcp-keepalive", "60") == "OK"
        left = probe()
        assert left is not None and 1 <= left <= 60, left
        assert admin.cmd("CONFIG", "SET", "tcp-keepalive", "0") == "OK"
        assert probe() is None
    finally:
        admin.cmd("CONFIG", "SET", "tcp-keepalive", "300")
        admin.close()
