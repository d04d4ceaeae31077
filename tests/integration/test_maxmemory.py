"""maxmemory holds under a write flood: 50 clients SET values of skewed
sizes (100 B to 100 KB) for a few seconds; used_memory (sampled, and the
server's own used_memory_peak) stays within 5% of maxmemory, nothing fails,
and the server is still up. One client streaming SETs through
`redis-cli --pipe` stays within 2%, three runs in a row. The longer version
is bench/maxmemory_flood.py."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from maxmemory_flood import flood, pipe_file, pipe_flood  # noqa: E402
from server import start_larder  # noqa: E402
from slots import shard_of  # noqa: E402

MAXMEMORY = 64 * 1024 * 1024


def keys_per_shard(c, shards):
    counts = [0] * shards
    cursor = b"0"
    while True:
        cursor, keys = c.cmd("SCAN", cursor, "COUNT", "1000")
        for k in keys:
            counts[shard_of(k, shards)] += 1
        if cursor in (b"0", "0", 0):
            return counts


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-s3fifo", "volatile-lru"])
def test_flood_stays_under_maxmemory(policy):
    srv = start_larder(["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", policy], threads=2)
    try:
        c = srv.conn()
        # volatile-*: the flood's keys have no TTL, so nothing can be evicted:
        # once full, writes must get the OOM error instead of growing memory.
        r = flood(srv.port, seconds=4, clients=50)
        assert r["sampled_max"] <= MAXMEMORY * 1.05, r
        assert r["peak"] <= MAXMEMORY * 1.05, r
        if policy.startswith("allkeys"):
            assert r["errors"] == [], r["errors"][:3]
            assert r["evicted"] > 0
            # Eviction is spread over the shards in proportion to their keys:
            # neither shard was emptied to make room for the other's writes.
            counts = keys_per_shard(c, 2)
            assert min(counts) > 0.3 * sum(counts), counts
        else:
            assert all(e.startswith("OOM command not allowed") for e in r["errors"]), r["errors"][:3]
        assert c.cmd("PING") == "PONG"
        c.close()
    finally:
        srv.stop()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli (redis-tools) is not installed")
def test_pipe_flood_stays_within_two_percent():
    # 20,000 SETs, about 125 MB: the limit is reached and then held while
    # the client sends as fast as the server reads (its query buffer counts
    # against maxmemory as in Redis, and must not grow with the backlog).
    commands = 20000
    path = pipe_file(commands)
    try:
        for run in range(3):
            srv = start_larder(["--maxmemory", str(MAXMEMORY), "--maxmemory-policy", "allkeys-lru"], threads=2)
            try:
                r = pipe_flood(srv.port, path, commands)
                assert r["errors"] == [], r["errors"]
                assert r["evicted"] > 0, r
                assert r["sampled_max"] <= MAXMEMORY * 1.02, (run, r)
                assert r["peak"] <= MAXMEMORY * 1.02, (run, r)
                c = srv.conn()
                info = c.cmd("INFO", "clients").decode()
                assert c.cmd("PING") == "PONG"
                c.close()
                # The backlog waited in the socket, not in the server.
                max_input = int(info.split("client_recent_max_input_buffer:")[1].split()[0])
                assert max_input <= 1 << 20, info
            finally:
                srv.stop()
    finally:
        os.unlink(path)


def test_keyspace_table_does_not_grow_past_maxmemory():
    # Redis's "Don't rehash if used memory exceeds maxmemory after rehash":
    # a shard whose keyspace table is full (2048 keys in 2048 buckets) takes
    # one more key without doubling its array (16 KB more) when that would
    # cross maxmemory, so no key is evicted to pay for the table itself.
    srv = start_larder(["--maxmemory-policy", "allkeys-random"], threads=2)
    try:
        c = srv.conn()
        # (The first call of a command allocates its latency histogram.)
        assert c.cmd("CONFIG", "SET", "latency-tracking", "no") == "OK"
        names = {0: [], 1: []}
        i = 0
        while min(len(v) for v in names.values()) < 2052:
            k = f"key:{i}"
            names[shard_of(k, 2)].append(k)
            i += 1
        assert c.pipeline([("SET", k, "x") for s in (0, 1) for k in names[s][:2048]]) == ["OK"] * 4096
        # (The first reply after the pipeline's sizes this client's output
        # buffer again: read used_memory once it has.)
        c.cmd("INFO", "memory")
        used = int(c.cmd("INFO", "memory").decode().split("used_memory:")[1].split()[0])
        assert c.cmd("CONFIG", "SET", "maxmemory", str(used + 10 * 1024)) == "OK"
        for s in (0, 1):
            for k in names[s][2048:2050]:
                assert c.cmd("SET", k, "y") == "OK"
        assert c.cmd("DBSIZE") == 4100
        stats = c.cmd("INFO", "stats").decode()
        assert "evicted_keys:0\r\n" in stats
        # With room again, the tables grow and every key is still there.
        assert c.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"
        for s in (0, 1):
            for k in names[s][2050:2052]:
                assert c.cmd("SET", k, "z") == "OK"
        assert c.cmd("DBSIZE") == 4104
        assert c.cmd("GET", names[0][0]) == b"x" and c.cmd("GET", names[1][2049]) == b"y"
        c.close()
    finally:
        srv.stop()
