"""Transactions and scripts as real client libraries use them, the client
code unchanged: redis-py pipelines (MULTI/EXEC and plain), WATCH retry loops,
redis-py's Lock (SET NX PX and three Lua scripts), the Redlock release script
through EVAL and EVALSHA, and ioredis's multi() and defineCommand.

The server has two shards, and the keys of each test are chosen to live on
both (tests/lib/slots.py), so EXEC and the scripts cross shards.

LARDER_TEST_TARGET=redis runs the same tests against Debian's redis-server:
they must pass there first, which is how we know the tests are right."""
import threading

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError, ResponseError, WatchError

import node_client
from server import start_target, wait_until
from slots import shard_of

SHARDS = 2

# The Redlock release: delete the key only if it still holds our token.
RELEASE = 'if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end'


def spread_keys(prefix, n, shards=SHARDS):
    """n key names starting with `prefix`, alternating over the shards."""
    out, i = [], 0
    while len(out) < n:
        name = f"{prefix}{i}"
        if shard_of(name, shards) == len(out) % shards:
            out.append(name)
        i += 1
    return out


@pytest.fixture(scope="module")
def srv():
    s = start_target(threads=SHARDS)
    yield s
    s.stop()


@pytest.fixture
def r(srv):
    c = redis.Redis(port=srv.port, socket_timeout=60)
    c.flushall()
    yield c
    c.close()


@pytest.fixture
def other(srv):
    """A second connection: the concurrent writer."""
    c = redis.Redis(port=srv.port, socket_timeout=60)
    yield c
    c.close()


# --- redis-py pipelines ---------------------------------------------------

def test_pipeline_transaction_applies_all(r):
    a, b, c = spread_keys("tx:", 3)
    p = r.pipeline()  # transaction=True: MULTI ... EXEC
    p.set(a, "1").incr(a).rpush(b, "x", "y").hset(c, "f", "v").get(a).lrange(b, 0, -1)
    assert p.execute() == [True, 2, 2, 1, b"2", [b"x", b"y"]]
    assert r.get(a) == b"2" and r.hget(c, "f") == b"v"


def test_pipeline_runtime_error_leaves_the_others_applied(r):
    a, b, c = spread_keys("txerr:", 3)
    r.set(b, "not a number")
    p = r.pipeline()
    p.set(a, "1").incr(b).lpush(b, "x").set(c, "3")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and res[3] is True
    assert isinstance(res[1], ResponseError) and "not an integer" in str(res[1])
    assert isinstance(res[2], ResponseError) and str(res[2]).startswith("WRONGTYPE")
    # No rollback: the commands around the failing ones ran.
    assert r.mget(a, b, c) == [b"1", b"not a number", b"3"]

    # With raise_on_error (the default) the first error is raised, but the
    # transaction still ran as a whole.
    r.flushall()
    r.set(b, "x")
    p = r.pipeline()
    p.set(a, "10").incr(b).set(c, "30")
    with pytest.raises(ResponseError, match="Command # 2"):
        p.execute()
    assert r.mget(a, c) == [b"10", b"30"]


def test_pipeline_queue_time_error_discards_everything(r):
    a, b = spread_keys("txabort:", 2)
    p = r.pipeline()
    p.set(a, "1")
    p.execute_command("NOSUCHCOMMAND", "x")
    p.set(b, "2")
    # EXEC answers EXECABORT; redis-py raises the error of the bad command.
    with pytest.raises(ResponseError, match="unknown command"):
        p.execute()
    assert r.exists(a, b) == 0
    # Wrong arity is a queue-time error too.
    p = r.pipeline()
    p.set(a, "1")
    p.execute_command("GET")
    with pytest.raises(ResponseError, match="wrong number of arguments"):
        p.execute()
    assert r.exists(a) == 0


def test_pipeline_without_transaction(r):
    keys = spread_keys("notx:", 4)
    p = r.pipeline(transaction=False)
    for i, k in enumerate(keys):
        p.set(k, i)
    p.incr(keys[0]).get(keys[3]).mget(*keys)
    res = p.execute()
    assert res == [True] * 4 + [1, b"3", [b"1", b"1", b"2", b"3"]]
    r.set(keys[1], "x")
    p = r.pipeline(transaction=False)
    p.incr(keys[1]).incr(keys[2])
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], ResponseError) and res[1] == 3


def test_transaction_replies_keep_their_types(r):
    # Replies of every family inside EXEC are parsed by redis-py as outside.
    s, z, h, l = spread_keys("types:", 4)
    p = r.pipeline()
    p.sadd(s, "a", "b").smembers(s).zadd(z, {"m": 1.5}).zscore(z, "m").zrange(z, 0, -1, withscores=True)
    p.hset(h, mapping={"f": "1", "g": "2"}).hgetall(h).rpush(l, 1, 2).lpop(l).expire(l, 100).ttl(l)
    p.exists(s, z, h, l).type(z).get("nosuch")
    res = p.execute()
    assert res[:11] == [2, {b"a", b"b"}, 1, 1.5, [(b"m", 1.5)], 2, {b"f": b"1", b"g": b"2"}, 2, b"1", True,
                        res[10]]
    assert 99 <= res[10] <= 100
    assert res[11:] == [4, b"zset", None]


# --- WATCH ----------------------------------------------------------------

def test_transaction_helper_retries_after_a_concurrent_write(r, other):
    key, side = spread_keys("watch:", 2)
    r.set(key, 10)
    calls = []

    def double(pipe):
        calls.append(1)
        v = int(pipe.get(key))  # after WATCH: runs at once
        if len(calls) == 1:
            other.incrby(key, 5)  # between WATCH and EXEC: this attempt must fail
        pipe.multi()
        pipe.set(key, v * 2)
        pipe.incr(side)

    res = r.transaction(double, key)
    assert len(calls) == 2
    assert res == [True, 1]
    assert r.get(key) == b"30"  # (10 + 5) * 2: the second attempt saw the write
    assert r.get(side) == b"1"  # the failed attempt's commands did not run


def test_explicit_watch_loop(r, other):
    a, b = spread_keys("wloop:", 2)  # one on each shard
    r.mset({a: 100, b: 0})
    failures = 0
    with r.pipeline() as pipe:
        while True:
            try:
                pipe.watch(a, b)
                va, vb = (int(x) for x in pipe.mget(a, b))
                if failures == 0:
                    # Write the key on the *other* shard than the first watched one.
                    other.incr(b)
                pipe.multi()
                pipe.set(a, va - 10)
                pipe.set(b, vb + 10)
                assert pipe.execute() == [True, True]
                break
            except WatchError:
                failures += 1
                assert failures < 5
    assert failures == 1
    assert r.mget(a, b) == [b"90", b"11"]


def test_watch_sees_creation_deletion_expire_and_flush(r, other):
    a, b = spread_keys("wcases:", 2)

    def attempt(prepare, write, key):
        """WATCH key, let `write` run from the other connection, EXEC; returns
        True if EXEC ran (no WatchError)."""
        r.delete(a, b)
        prepare()
        with r.pipeline() as pipe:
            pipe.watch(key)
            write()
            pipe.multi()
            pipe.set(b, "done")
            try:
                pipe.execute()
                return True
            except WatchError:
                return False

    nothing = lambda: None  # noqa: E731
    assert not attempt(nothing, lambda: other.set(a, "new"), a)  # created
    assert not attempt(lambda: r.set(a, "1"), lambda: other.delete(a), a)  # deleted
    assert not attempt(lambda: r.set(a, "1"), lambda: other.expire(a, 100), a)  # TTL changed
    assert not attempt(lambda: r.rpush(a, "1"), lambda: other.rpush(a, "2"), a)  # another type
    assert not attempt(lambda: r.set(a, "1"), lambda: other.flushall(), a)  # emptied
    # Untouched, or written to the same value? Only the untouched one runs:
    # any write counts, even one that changes nothing.
    assert attempt(lambda: r.set(a, "1"), lambda: other.get(a), a)
    assert not attempt(lambda: r.set(a, "1"), lambda: other.set(a, "1"), a)
    # A write to a key that is not watched, on the other shard, changes nothing.
    assert attempt(lambda: r.set(a, "1"), lambda: other.set(b, "x"), a)


def test_watch_and_expiry(r, other):
    """Redis 7: a watched key that expires after WATCH aborts EXEC, whether
    something touched it (lazy expiry from another client) or not; one that
    had already expired when WATCH ran does not."""
    a, b = spread_keys("wexp:", 2)

    def server_ms():
        sec, usec = r.time()
        return sec * 1000 + usec // 1000

    def exec_runs(key):
        with r.pipeline() as pipe:
            pipe.watch(key)
            yield
            pipe.multi()
            pipe.set(b, "x")
            try:
                pipe.execute()
                yield True
            except WatchError:
                yield False

    # Expired and read by another client (its lazy expiry deletes it).
    r.set(a, "v", px=300)
    run = exec_runs(a)
    next(run)
    assert wait_until(lambda: other.exists(a) == 0)
    assert next(run) is False
    # Expired with nobody touching it: wait on the server's clock only (TIME).
    r.set(a, "v", px=300)
    deadline = r.execute_command("PEXPIRETIME", a)
    run = exec_runs(a)
    next(run)
    assert wait_until(lambda: server_ms() > deadline + 20)
    assert next(run) is False
    # Already expired at WATCH time: nothing to abort for.
    r.set(a, "v", px=100)
    assert wait_until(lambda: r.exists(a) == 0)
    run = exec_runs(a)
    next(run)
    assert next(run) is True


def test_unwatch_and_reset(r, other):
    (a,) = spread_keys("unwatch:", 1)
    r.set(a, "1")
    with r.pipeline() as pipe:
        pipe.watch(a)
        pipe.unwatch()
        other.set(a, "2")
        pipe.multi()
        pipe.get(a)
        assert pipe.execute() == [b"2"]
    # reset() (leaving the with block) sends UNWATCH: the connection goes back
    # to the pool clean, and the next user's EXEC is not aborted.
    pipe = r.pipeline()
    pipe.watch(a)
    pipe.reset()
    other.set(a, "3")
    assert r.pipeline().get(a).execute() == [b"3"]


# --- redis-py Lock --------------------------------------------------------

def test_lock_acquire_extend_reacquire_release(r):
    name = "lock:resource"
    lock = r.lock(name, timeout=5)
    assert lock.acquire(blocking=False)
    assert lock.owned() and lock.locked()
    assert 4000 <= r.pttl(name) <= 5000

    rival = r.lock(name, timeout=5)
    assert not rival.acquire(blocking=False)
    assert not rival.acquire(blocking=True, blocking_timeout=0.2)

    assert lock.extend(10)  # adds to the TTL left (Lua: PEXPIRE with PTTL + 10 s)
    assert 13000 <= r.pttl(name) <= 15000
    assert lock.extend(3, replace_ttl=True)
    assert 2000 <= r.pttl(name) <= 3000
    assert lock.reacquire()  # back to the lock's own timeout
    assert 4000 <= r.pttl(name) <= 5000

    lock.release()
    assert r.get(name) is None and not lock.locked()
    with pytest.raises(LockError):
        lock.release()  # not held (redis-py checks locally)
    assert rival.acquire(blocking=False)
    rival.release()


def test_lock_not_owned(r):
    name = "lock:owned"
    lock = r.lock(name, timeout=30)
    assert lock.acquire(blocking=False)
    impostor = r.lock(name, timeout=30)
    impostor.local.token = b"not-the-owner-token"
    with pytest.raises(LockNotOwnedError):
        impostor.release()
    impostor.local.token = b"not-the-owner-token"
    with pytest.raises(LockNotOwnedError):
        impostor.extend(5)
    with pytest.raises(LockNotOwnedError):
        impostor.reacquire()
    assert lock.owned()  # the owner's lock is untouched
    lock.release()


def test_lock_expiry_lets_another_acquire(r):
    name = "lock:expiring"
    first = r.lock(name, timeout=0.3)  # 300 ms
    assert first.acquire(blocking=False)
    second = r.lock(name, timeout=30, sleep=0.02)
    # Blocks (polling SET NX) until the first lock's key expires.
    assert second.acquire(blocking=True, blocking_timeout=30)
    assert second.owned() and not first.owned()
    with pytest.raises(LockNotOwnedError):
        first.release()  # its token is gone; the release script answers 0
    assert second.owned()
    second.release()


def test_lock_as_context_manager_with_threads(srv, r):
    """Several threads, each with its own client, increment a counter with
    GET and SET under the lock: no increment may be lost."""
    (counter,) = spread_keys("lock:counter:", 1)
    r.set(counter, 0)
    errors = []

    def worker():
        c = redis.Redis(port=srv.port, socket_timeout=60)
        try:
            for _ in range(25):
                with c.lock("lock:ctx", timeout=30, sleep=0.005, blocking_timeout=60):
                    v = int(c.get(counter))
                    c.set(counter, v + 1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert r.get(counter) == b"100"


# --- scripts ----------------------------------------------------------------

def test_redlock_release_via_eval(r):
    (key,) = spread_keys("redlock:", 1)
    r.set(key, "token-1", px=30000)
    assert r.eval(RELEASE, 1, key, "token-2") == 0
    assert r.get(key) == b"token-1"
    assert r.eval(RELEASE, 1, key, "token-1") == 1
    assert r.get(key) is None
    assert r.eval(RELEASE, 1, key, "token-1") == 0  # nothing to release


def test_redlock_release_via_evalsha_and_noscript_fallback(r):
    key1, key2 = spread_keys("redlock2:", 2)
    script = r.register_script(RELEASE)
    sha = r.script_load(RELEASE)
    assert sha == script.sha
    r.set(key1, "t1")
    assert r.evalsha(sha, 1, key1, "t1") == 1

    r.script_flush()
    assert r.script_exists(sha) == [False]
    with pytest.raises(NoScriptError):
        r.evalsha(sha, 1, key1, "t1")
    # The Script object meets NOSCRIPT, loads the script (SCRIPT LOAD) and
    # runs EVALSHA again.
    r.set(key2, "t2")
    assert script(keys=[key2], args=["wrong"]) == 0
    assert script(keys=[key2], args=["t2"]) == 1
    assert r.script_exists(sha) == [True]
    assert r.exists(key2) == 0


def test_script_in_a_transaction_pipeline(r):
    a, b = spread_keys("scriptpipe:", 2)
    script = r.register_script(RELEASE)
    r.script_flush()  # the pipeline loads it first (SCRIPT EXISTS, SCRIPT LOAD)
    r.set(a, "ta")
    r.set(b, "tb")
    p = r.pipeline()
    script(keys=[a], args=["ta"], client=p)
    script(keys=[b], args=["nope"], client=p)
    p.exists(a, b)
    assert p.execute() == [1, 0, 1]
    assert r.get(b) == b"tb"
    # EVAL itself queued in MULTI.
    p = r.pipeline()
    p.eval("return redis.call('incrby', KEYS[1], ARGV[1])", 1, a, 5).eval(
        "return redis.call('get', KEYS[1])", 1, a)
    assert p.execute() == [5, b"5"]


def test_script_error_inside_exec(r):
    (a,) = spread_keys("scripterr:", 1)
    r.set(a, "text")
    p = r.pipeline()
    p.eval("return redis.call('incr', KEYS[1])", 1, a).set(a, "after")
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], ResponseError) and "not an integer" in str(res[0])
    assert res[1] is True and r.get(a) == b"after"


# --- ioredis ---------------------------------------------------------------

def run_node(srv, script, *args):
    return node_client.run_node(srv.port, script, *args)


def test_ioredis_multi(srv):
    got = run_node(srv, "transactions_client.js", *spread_keys("node:tx:", 4), "multi")
    assert got["exec"] == [[None, "OK"], [None, 6], [None, ["x", "y"]], [None, "6"]]
    assert got["runtimeError"][0] == [None, "OK"]
    assert "not an integer" in got["runtimeError"][1][0]
    assert got["runtimeError"][2] == [None, "OK"]
    assert "EXECABORT" in got["queueError"]
    assert got["queueErrorApplied"] == 0
    assert got["watchAborted"] is None
    assert got["watchRetried"] == [[None, "OK"]]
    assert got["watchValue"] == "from-second-attempt"


def test_ioredis_define_command(srv):
    got = run_node(srv, "transactions_client.js", *spread_keys("node:script:", 4), "scripts")
    assert got["release"] == [0, 1, 0]
    assert got["afterFlush"] == 1
    assert got["evalsDuringFallback"] == 1  # EVALSHA met NOSCRIPT; ioredis sent EVAL
    assert got["scriptExists"] == [1]
    assert got["inMulti"] == [[None, "OK"], [None, 1], [None, 0]]


def test_node_redlock_over_two_shards(srv):
    node_client.require_package("redlock")
    got = run_node(srv, "redlock_client.js", *spread_keys("node:redlock:", 2))
    assert got == {"values": [True, True], "rivalLocked": False, "rivalError": "LockError",
                   "pttlAfterExtend": True, "afterUnlock": 0, "nextAcquired": True,
                   "staleUnlock": "LockError", "stillHeld": True, "end": 0}
