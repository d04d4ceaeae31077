"""Lazy freeing (issue 16): UNLINK and FLUSHALL/FLUSHDB ASYNC always hand big
values to the lazy-free thread, DEL, FLUSHALL, expiry and the deletes a
command does itself only under their lazyfree-lazy-* setting; values of at
most 64 elements are freed at once. Checked through INFO's
lazyfree_pending_objects and lazyfreed_objects and through used_memory
coming back. Real server, real sockets."""
import time

import pytest
from server import start_larder


@pytest.fixture(scope="module")
def srv():
    s = start_larder(threads=2)
    yield s
    s.stop()


@pytest.fixture
def c(srv):
    conn = srv.conn()
    conn.cmd("FLUSHALL", "SYNC")
    for name in ("lazyfree-lazy-user-del", "lazyfree-lazy-user-flush", "lazyfree-lazy-expire",
                 "lazyfree-lazy-server-del", "lazyfree-lazy-eviction"):
        conn.cmd("CONFIG", "SET", name, "no")
    conn.cmd("CONFIG", "RESETSTAT")
    yield conn
    conn.close()


def info(c, field):
    for line in c.cmd("INFO", "memory").decode().splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":")[1])
    raise KeyError(field)


def settle(c):
    for _ in range(500):
        if info(c, "lazyfree_pending_objects") == 0:
            return
        time.sleep(0.01)
    raise AssertionError("lazy free did not finish")


def big_set(c, key, n=20000):
    for i in range(0, n, 5000):
        c.cmd("SADD", key, *[f"m{j}" for j in range(i, i + 5000)])


def test_unlink_frees_big_values_in_the_background(c):
    before = info(c, "used_memory")
    big_set(c, "big")
    assert info(c, "used_memory") > before + 500_000
    c.cmd("SADD", "small", "a", "b")
    assert c.cmd("UNLINK", "big", "small", "missing") == 2
    settle(c)
    assert info(c, "lazyfreed_objects") == 1  # the small set was freed at once
    assert info(c, "used_memory") < before + 200_000
    assert c.cmd("EXISTS", "big", "small") == 0


def test_del_is_lazy_only_under_lazyfree_lazy_user_del(c):
    big_set(c, "a")
    assert c.cmd("DEL", "a") == 1
    settle(c)
    assert info(c, "lazyfreed_objects") == 0
    c.cmd("CONFIG", "SET", "lazyfree-lazy-user-del", "yes")
    big_set(c, "a")
    assert c.cmd("DEL", "a") == 1
    settle(c)
    assert info(c, "lazyfreed_objects") == 1


def test_flush_async_and_lazyfree_lazy_user_flush(c):
    for i in range(5):
        c.cmd("SET", f"k{i}", "v")
    c.cmd("FLUSHALL", "ASYNC")
    settle(c)
    assert c.cmd("DBSIZE") == 0
    assert info(c, "lazyfreed_objects") == 5  # counted by keys, as Redis
    c.cmd("SET", "k", "v")
    c.cmd("FLUSHDB")
    settle(c)
    assert info(c, "lazyfreed_objects") == 5
    c.cmd("CONFIG", "SET", "lazyfree-lazy-user-flush", "yes")
    c.cmd("SET", "k", "v")
    c.cmd("FLUSHDB")
    settle(c)
    assert info(c, "lazyfreed_objects") == 6
    c.cmd("SET", "k", "v")
    c.cmd("FLUSHDB", "SYNC")  # SYNC wins over the setting
    settle(c)
    assert info(c, "lazyfreed_objects") == 6


def test_expiry_and_overwrites_follow_their_settings(c):
    c.cmd("CONFIG", "SET", "lazyfree-lazy-expire", "yes")
    big_set(c, "e")
    c.cmd("PEXPIRE", "e", "1")
    time.sleep(0.05)
    assert c.cmd("EXISTS", "e") == 0  # deleted on access
    settle(c)
    assert info(c, "lazyfreed_objects") == 1
    c.cmd("CONFIG", "SET", "lazyfree-lazy-server-del", "yes")
    big_set(c, "o")
    c.cmd("SET", "o", "now a string")  # the overwrite frees the set
    settle(c)
    assert info(c, "lazyfreed_objects") == 2
    assert c.cmd("GET", "o") == b"now a string"


def test_the_shard_answers_while_a_huge_key_is_freed(c):
    big_set(c, "huge", 300_000)
    assert c.cmd("UNLINK", "huge") == 1
    assert c.cmd("PING") == "PONG"  # (how long either takes: bench/big_keys.py)
    settle(c)
    assert info(c, "lazyfreed_objects") == 1
