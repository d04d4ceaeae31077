"""CACHE FETCH: single flight for cache-aside code without a rule. Of many
callers of a missing key exactly one is told to compute it; the others wait
and get the value it SETs; if it goes away, one of them takes over."""
import threading
import time

import pytest

from server import start_larder


@pytest.fixture
def srv():
    s = start_larder(threads=2)
    yield s
    s.stop()


def fetch_all(conns, key, lease="5000"):
    results = [None] * len(conns)
    barrier = threading.Barrier(len(conns))

    def run(i):
        barrier.wait()
        results[i] = conns[i].cmd("CACHE", "FETCH", key, lease)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    return threads, results


def test_one_caller_computes_the_others_get_its_value(srv):
    n = 200
    conns = [srv.conn(timeout=60) for _ in range(n)]
    threads, results = fetch_all(conns, "report:1")
    # Exactly one computes; wait for it, then store the value as it would.
    deadline = time.time() + 30
    while time.time() < deadline and sum(1 for r in results if r is not None) < 1:
        time.sleep(0.01)
    computing = [i for i, r in enumerate(results) if r == [b"compute", None]]
    assert len(computing) == 1, results
    time.sleep(0.3)
    conns[computing[0]].cmd("SET", "report:1", "42", "EX", "100")
    for t in threads:
        t.join(30)
    others = [r for i, r in enumerate(results) if i != computing[0]]
    assert others == [[b"hit", b"42"]] * (n - 1)
    for c in conns:
        c.close()


def test_a_caller_that_goes_away_is_replaced(srv):
    first = srv.conn()
    assert first.cmd("CACHE", "FETCH", "k", "60000") == [b"compute", None]
    waiters = [srv.conn(timeout=30) for _ in range(5)]
    threads, results = fetch_all(waiters, "k", "60000")
    time.sleep(0.3)
    assert results == [None] * 5  # all waiting on the first caller's lease
    first.close()  # it dies before storing anything
    for t in threads:
        t.join(30)
    assert results == [None] * 5  # woken with nil: ask again
    again = [w.cmd("CACHE", "FETCH", "k", "60000") for w in waiters[:1]]
    assert again == [[b"compute", None]]
    assert waiters[1].cmd("PING") == "PONG"


def test_an_expired_lease_lets_the_next_caller_compute(srv):
    a, b = srv.conn(), srv.conn()
    assert a.cmd("CACHE", "FETCH", "slow", "300") == [b"compute", None]
    t0 = time.time()
    assert b.cmd("CACHE", "FETCH", "slow", "300") is None  # waited out the lease
    assert time.time() - t0 >= 0.2
    assert b.cmd("CACHE", "FETCH", "slow", "300") == [b"compute", None]
    b.cmd("SET", "slow", "v")
    assert a.cmd("CACHE", "FETCH", "slow", "300") == [b"hit", b"v"]


def test_early_refresh_goes_to_one_caller(srv):
    a, b = srv.conn(), srv.conn()
    a.cmd("SET", "hot", "old", "PX", "1500")
    assert a.cmd("CACHE", "FETCH", "hot", "5000", "EARLY", "100") == [b"hit", b"old"]
    assert a.cmd("CACHE", "FETCH", "hot", "5000", "EARLY", "2000") == [b"refresh", b"old"]
    assert b.cmd("CACHE", "FETCH", "hot", "5000", "EARLY", "2000") == [b"hit", b"old"]
    a.cmd("SET", "hot", "new", "EX", "100")
    assert b.cmd("CACHE", "FETCH", "hot", "5000", "EARLY", "2000") == [b"hit", b"new"]


def test_errors(srv):
    c = srv.conn()
    assert str(c.cmd("CACHE", "FETCH", "k", "0")).startswith("ERR lease")
    assert str(c.cmd("CACHE", "FETCH", "k", "10", "EARLY")).startswith("ERR syntax")
    c.cmd("RPUSH", "l", "x")
    assert str(c.cmd("CACHE", "FETCH", "l", "10")).startswith("WRONGTYPE")
