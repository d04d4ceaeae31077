"""Atomicity across shards: client threads move amounts between balances that
live on different shards — with WATCH/MULTI/EXEC (optimistic, GET then SET),
with plain MULTI/INCRBY/DECRBY/EXEC, and with an EVAL that moves an amount —
while other threads read every balance at once, with MULTI/GET.../EXEC and
with an EVAL that sums. The total is constant: no reader may ever see another
sum, and none may be left at the end.

Each thread runs a fixed number of operations (the pass criterion never
depends on wall time); the joins have generous bounds only so that a hang
fails instead of blocking the suite.

LARDER_TEST_TARGET=redis runs the same against redis-server (the check that
the test is right); LARDER_ATOMIC_OPS scales the operations per thread."""
import os
import random
import threading

import pytest
import redis
from redis.exceptions import WatchError

from server import start_target
from slots import shard_of

SHARDS = 3
ACCOUNTS = 6  # two on each shard: transfers cross shards most of the time
START = 1000
OPS = int(os.environ.get("LARDER_ATOMIC_OPS", "300"))
READS = OPS  # each reader's reads
JOIN_S = 300

TRANSFER = """
local amount = tonumber(ARGV[1])
redis.call('DECRBY', KEYS[1], amount)
redis.call('INCRBY', KEYS[2], amount)
return redis.call('GET', KEYS[1])
"""
SUM = """
local total = 0
for _, k in ipairs(KEYS) do total = total + tonumber(redis.call('GET', k) or '0') end
return total
"""


def accounts(shards=SHARDS, n=ACCOUNTS):
    """n balance keys, an equal number on each shard, with no hash tags."""
    out, i = [], 0
    while len(out) < n:
        name = f"balance:{i}"
        if shard_of(name, shards) == len(out) % shards:
            out.append(name)
        i += 1
    return out


KEYS = accounts()
TOTAL = START * ACCOUNTS


@pytest.fixture(scope="module")
def srv():
    s = start_target(threads=SHARDS)
    yield s
    s.stop()


@pytest.fixture
def seeded(srv):
    c = redis.Redis(port=srv.port, socket_timeout=60)
    c.flushall()
    c.mset({k: START for k in KEYS})
    c.close()
    return srv


def client(srv):
    return redis.Redis(port=srv.port, socket_timeout=60, single_connection_client=True)


def pick_pair(rng):
    a, b = rng.sample(KEYS, 2)
    return a, b


def watch_transfers(srv, seed, ops, stats):
    """Optimistic transfers: WATCH both, GET both, MULTI SET SET EXEC, retry
    on WatchError. Without a working WATCH this loses updates."""
    c, rng = client(srv), random.Random(seed)
    with c.pipeline() as pipe:
        for _ in range(ops):
            a, b = pick_pair(rng)
            amount = rng.randint(1, 50)
            while True:
                try:
                    pipe.watch(a, b)
                    va, vb = (int(x) for x in pipe.mget(a, b))
                    pipe.multi()
                    pipe.set(a, va - amount)
                    pipe.set(b, vb + amount)
                    pipe.execute()
                    stats["watch_ok"] += 1
                    break
                except WatchError:
                    stats["watch_retries"] += 1
    c.close()


def multi_transfers(srv, seed, ops, stats):
    """Blind transfers in one transaction: MULTI DECRBY INCRBY EXEC."""
    c, rng = client(srv), random.Random(seed)
    for _ in range(ops):
        a, b = pick_pair(rng)
        amount = rng.randint(1, 50)
        p = c.pipeline()
        p.decrby(a, amount).incrby(b, amount)
        p.execute()
        stats["multi_ok"] += 1
    c.close()


def script_transfers(srv, seed, ops, stats):
    c, rng = client(srv), random.Random(seed)
    move = c.register_script(TRANSFER)
    for _ in range(ops):
        a, b = pick_pair(rng)
        move(keys=[a, b], args=[rng.randint(1, 50)])
        stats["script_ok"] += 1
    c.close()


def mset_transfers(srv, seed, ops, stats):
    """The only writer of its run: it knows every balance, and moves an amount
    with one MSET of the two new values (one command, atomic in Redis)."""
    c, rng = client(srv), random.Random(seed)
    balances = dict(zip(KEYS, (int(v) for v in c.mget(KEYS))))
    for _ in range(ops):
        a, b = pick_pair(rng)
        amount = rng.randint(1, 50)
        balances[a] -= amount
        balances[b] += amount
        c.mset({a: balances[a], b: balances[b]})
        stats["multi_ok"] += 1
    c.close()


def mget_reader(srv, seed, reads, stats, bad):
    c = client(srv)
    for _ in range(reads):
        values = c.mget(KEYS)
        stats["reads"] += 1
        if sum(int(v) for v in values) != TOTAL:
            bad.append(("MGET", values))
    c.close()


def multi_reader(srv, seed, reads, stats, bad):
    c = client(srv)
    for _ in range(reads):
        p = c.pipeline()
        for k in KEYS:
            p.get(k)
        values = p.execute()
        total = sum(int(v) for v in values)
        stats["reads"] += 1
        if total != TOTAL:
            bad.append(("MULTI/GET", values))
    c.close()


def script_reader(srv, seed, reads, stats, bad):
    c = client(srv)
    summing = c.register_script(SUM)
    for _ in range(reads):
        total = summing(keys=KEYS)
        stats["reads"] += 1
        if total != TOTAL:
            bad.append(("EVAL sum", total))
    c.close()


def run_threads(srv, workers):
    """workers: (function, count) pairs. Every function takes (srv, seed, ops,
    stats[, bad]); returns the stats and the bad reads."""
    stats = {"watch_ok": 0, "watch_retries": 0, "multi_ok": 0, "script_ok": 0, "reads": 0}
    bad, errors, threads = [], [], []
    lock = threading.Lock()

    def wrap(fn, seed, n):
        local = dict.fromkeys(stats, 0)
        try:
            if fn in READERS:
                fn(srv, seed, n, local, bad)
            else:
                fn(srv, seed, n, local)
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(f"{fn.__name__}: {e!r}")
        with lock:
            for k, v in local.items():
                stats[k] += v

    seed = 0
    for fn, count in workers:
        for _ in range(count):
            seed += 1
            n = READS if fn in READERS else OPS
            threads.append(threading.Thread(target=wrap, args=(fn, seed, n)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    assert errors == []
    return stats, bad


READERS = (multi_reader, script_reader, mget_reader)


def final_total(srv):
    c = client(srv)
    values = c.mget(KEYS)
    c.close()
    return sum(int(v) for v in values)


def test_keys_span_the_shards():
    assert sorted({shard_of(k, SHARDS) for k in KEYS}) == list(range(SHARDS))


def test_mset_and_mget_are_atomic_across_shards(seeded):
    """No transaction at all: one MSET writer, MGET readers. Redis runs every
    command alone, so a multi-key MGET never sees half of an MSET."""
    stats, bad = run_threads(seeded, [(mset_transfers, 1), (mget_reader, 2)])
    assert bad[:3] == []
    assert final_total(seeded) == TOTAL


def test_watch_and_multi_transfers_keep_the_total(seeded):
    stats, bad = run_threads(seeded, [(watch_transfers, 3), (multi_transfers, 2), (multi_reader, 1),
                                      (mget_reader, 1)])
    assert bad == []
    assert final_total(seeded) == TOTAL
    assert stats["watch_ok"] == 3 * OPS and stats["multi_ok"] == 2 * OPS
    assert stats["reads"] == 2 * READS


def test_watch_detects_every_conflict(seeded):
    """Only optimistic writers, many of them over few keys: each lost update
    (an EXEC that should have been aborted) shows in the final total."""
    stats, bad = run_threads(seeded, [(watch_transfers, 6)])
    assert final_total(seeded) == TOTAL
    assert stats["watch_ok"] == 6 * OPS


def test_script_transfers_keep_the_total(seeded):
    stats, bad = run_threads(seeded, [(script_transfers, 3), (script_reader, 1), (multi_reader, 1)])
    assert bad == []
    assert final_total(seeded) == TOTAL
    assert stats["script_ok"] == 3 * OPS


def test_everything_at_once(seeded):
    stats, bad = run_threads(seeded, [(watch_transfers, 2), (multi_transfers, 2), (script_transfers, 2),
                                      (multi_reader, 1), (script_reader, 1)])
    assert bad == []
    assert final_total(seeded) == TOTAL
