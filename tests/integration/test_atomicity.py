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


def keys_on(shard, n, prefix, shards=SHARDS):
    """n key names starting with `prefix` that all live on `shard`."""
    out = [f"{prefix}{i}" for i in range(100000) if shard_of(f"{prefix}{i}", shards) == shard]
    return out[:n]


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


@pytest.mark.parametrize("shard", range(SHARDS))
def test_watch_counter_loses_no_increment(srv, shard):
    """The smallest form of the above: two clients increment one counter with
    WATCH, GET, MULTI, SET, EXEC until each has had OPS EXECs succeed; the
    counter must then be exactly 2 * OPS. Once per shard of the counter."""
    (counter,) = keys_on(shard, 1, "counter:")
    c = client(srv)
    c.set(counter, 0)

    errors = []

    def incr():
        cc = client(srv)
        try:
            with cc.pipeline() as pipe:
                done = 0
                while done < OPS:
                    try:
                        pipe.watch(counter)
                        v = int(pipe.get(counter))
                        pipe.multi()
                        pipe.set(counter, v + 1)
                        pipe.execute()
                        done += 1
                    except WatchError:
                        pass
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            cc.close()

    threads = [threading.Thread(target=incr) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_S)
    assert not any(t.is_alive() for t in threads) and errors == []
    assert int(c.get(counter)) == 2 * OPS
    c.close()


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


# --- what a unit's writes wake, and scripts that reach undeclared keys -------
# Larder runs a unit holding the shards of its keys; a script that reaches a
# key on a shard it does not hold is undone and run again holding every shard
# (src/engine/atomic.h). Nothing of the first try may show: not its writes,
# not a blocked client served from them, not a counter bumped twice.

@pytest.fixture
def r(srv):
    c = redis.Redis(port=srv.port, socket_timeout=60)
    c.flushall()
    yield c
    c.close()


def blpop_in_thread(srv, key):
    """Starts BLPOP key 0 on its own connection; returns (thread, result list)."""
    got = []
    c = redis.Redis(port=srv.port, socket_timeout=120)

    def run():
        got.append(c.blpop(key, 0))
        c.close()

    t = threading.Thread(target=run)
    t.start()
    return t, got


def blocked(r):
    return r.info("clients")["blocked_clients"]


def wait_blocked(r, n):
    from server import wait_until
    assert wait_until(lambda: blocked(r) >= n, timeout=30)


def test_exec_serves_blocked_clients_after_the_whole_block(srv, r):
    (q,) = KEYS[:1]
    before = blocked(r)  # a waiter left by an earlier failure is not ours
    t, got = blpop_in_thread(srv, q)
    wait_blocked(r, before + 1)
    # Pushed and popped inside one EXEC: the waiter must not see the element.
    p = r.pipeline()
    p.rpush(q, "inside").lpop(q)
    assert p.execute() == [1, b"inside"]
    assert blocked(r) == before + 1 and got == []
    # Pushed twice, popped once: the waiter gets what is left after EXEC.
    p = r.pipeline()
    p.rpush(q, "a", "b").lpop(q)
    assert p.execute() == [2, b"a"]
    t.join(60)
    assert got == [(q.encode(), b"b")]
    assert r.llen(q) == 0


def test_script_serves_blocked_clients_once(srv, r):
    q, other_shard = KEYS[0], KEYS[1]
    assert shard_of(q, SHARDS) != shard_of(other_shard, SHARDS)
    before = blocked(r)
    t, got = blpop_in_thread(srv, q)
    wait_blocked(r, before + 1)
    # Pushes onto the declared key, then reaches an undeclared key on another
    # shard: in Larder the first try is undone and the script runs again.
    script = ("redis.call('rpush', KEYS[1], 'x') redis.call('incr', ARGV[1]) "
              "return redis.call('lrange', KEYS[1], 0, -1)")
    assert r.eval(script, 1, q, other_shard) == [b"x"]
    t.join(60)
    assert got == [(q.encode(), b"x")]
    assert r.get(other_shard) == b"1" and r.llen(q) == 0


def test_script_on_undeclared_keys_runs_once(r):
    a, b, c = KEYS[0], KEYS[1], KEYS[2]  # three shards
    script = ("local out = {} for _, k in ipairs(ARGV) do out[#out + 1] = redis.call('incr', k) end "
              "return out")
    # No declared key at all, then one declared and the others not.
    assert r.eval(script, 0, a, b, c) == [1, 1, 1]
    assert r.eval(script, 1, a, a, b, c) == [2, 2, 2]
    assert r.mget(a, b, c) == [b"2", b"2", b"2"]


def test_script_undo_restores_every_type(r):
    """Writes of every kind to declared keys, then an undeclared key on another
    shard: what the script leaves must be what one run leaves."""
    # Declared keys on shards 0 and 1, the undeclared one on shard 2.
    s, h, z = keys_on(0, 3, "undo:")
    l, st = keys_on(1, 2, "undo:")
    (far,) = keys_on(2, 1, "undo:")
    r.sadd(s, "keep")
    r.hset(h, "f", "old")
    r.zadd(z, {"m": 1})
    r.rpush(l, "first")
    r.set(st, "old", ex=1000)
    script = """
    redis.call('sadd', KEYS[1], 'new'); redis.call('srem', KEYS[1], 'keep')
    redis.call('hset', KEYS[2], 'f', 'new', 'g', 'added')
    redis.call('zincrby', KEYS[3], 5, 'm')
    redis.call('lpop', KEYS[4]); redis.call('rpush', KEYS[4], 'second')
    redis.call('set', KEYS[5], 'new')
    redis.call('incr', ARGV[1])
    return 'done'
    """
    keys = [s, h, z, l, st]
    assert r.eval(script, 5, *keys, far) == b"done"
    assert r.smembers(s) == {b"new"}
    assert r.hgetall(h) == {b"f": b"new", b"g": b"added"}
    assert r.zscore(z, "m") == 6
    assert r.lrange(l, 0, -1) == [b"second"]
    assert r.get(st) == b"new" and r.ttl(st) == -1
    assert r.get(far) == b"1"


def test_script_error_keeps_earlier_writes(r):
    a, b = KEYS[0], KEYS[1]
    r.set(b, "text")
    with pytest.raises(redis.exceptions.ResponseError, match="not an integer"):
        r.eval("redis.call('set', KEYS[1], 'written') return redis.call('incr', KEYS[2])", 2, a, b)
    # No rollback on an error (Redis): the SET before it stays.
    assert r.get(a) == b"written"
    # The same when the failing key was not declared (another shard).
    r.delete(a)
    with pytest.raises(redis.exceptions.ResponseError, match="not an integer"):
        r.eval("redis.call('set', KEYS[1], 'again') return redis.call('incr', ARGV[1])", 1, a, b)
    assert r.get(a) == b"again"
