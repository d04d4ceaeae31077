"""Pub/sub against the real binary with real clients: redis-py's pubsub()
(get_message, listen, run_in_thread), ioredis in subscriber mode, messages
crossing threads in their publisher's order, RESP3 pushes between replies,
and a subscriber that never reads, disconnected at client-output-buffer-limit
pubsub while the server's memory stays bounded.

LARDER_TEST_TARGET=redis runs the same tests against Debian's redis-server.
"""
import socket
import threading
import time

import pytest
import redis

import node_client
from resp import Conn, Push
from server import start_target, wait_until

THREADS = 3


@pytest.fixture(scope="module")
def srv():
    s = start_target(threads=THREADS)
    yield s
    s.stop()


@pytest.fixture
def r(srv):
    c = redis.Redis(port=srv.port, socket_timeout=60)
    yield c
    c.close()


def next_message(ps, timeout=30.0):
    """The next message (not a subscribe confirmation) of a redis-py PubSub."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if m is not None:
            return m
    raise AssertionError("no message arrived")


def test_redis_py_get_message_and_patterns(srv, r):
    ps = r.pubsub()
    ps.subscribe("cache:invalidate")
    ps.psubscribe("user:*")
    first = ps.get_message(timeout=10)
    assert first["type"] == "subscribe" and first["channel"] == b"cache:invalidate"
    assert r.pubsub_numsub("cache:invalidate") == [(b"cache:invalidate", 1)]
    assert r.publish("cache:invalidate", "product:42") == 1
    m = next_message(ps)
    assert (m["type"], m["channel"], m["data"]) == ("message", b"cache:invalidate", b"product:42")
    assert r.publish("user:7", "renamed") == 1
    m = next_message(ps)
    assert (m["type"], m["pattern"], m["channel"], m["data"]) == ("pmessage", b"user:*", b"user:7", b"renamed")
    assert r.publish("other", "x") == 0
    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()
    wait_until(lambda: r.pubsub_numsub("cache:invalidate") == [(b"cache:invalidate", 0)], timeout=30)


def test_redis_py_listen_and_run_in_thread(srv, r):
    seen = []
    done = threading.Event()

    def handler(message):
        seen.append(message["data"])
        if len(seen) == 50:
            done.set()

    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe(**{"events": handler})
    worker = ps.run_in_thread(sleep_time=0.01)
    try:
        wait_until(lambda: r.pubsub_numsub("events") == [(b"events", 1)], timeout=30)
        for i in range(50):
            assert r.publish("events", f"e{i}") == 1
        assert done.wait(30)
        assert seen == [f"e{i}".encode() for i in range(50)]
    finally:
        worker.stop()
        worker.join(30)
        ps.close()

    # listen(): a generator over the messages, confirmations included.
    ps = r.pubsub()
    ps.subscribe("jobs")
    got = []
    for message in ps.listen():
        got.append(message["type"])
        if message["type"] == "subscribe":
            r.publish("jobs", "run")
        if message["type"] == "message":
            assert message["data"] == b"run"
            break
    assert got == ["subscribe", "message"]
    ps.close()


def test_subscribers_on_every_thread_get_messages_in_publish_order(srv, r):
    """Connections land on the shard threads in turn: subscribers on each of
    them receive every message, in the order the publisher published."""
    subs = []
    for _ in range(THREADS * 2):
        c = Conn(srv.port)
        assert c.cmd("SUBSCRIBE", "order") == [b"subscribe", b"order", 1]
        subs.append(c)
    wait_until(lambda: r.pubsub_numsub("order") == [(b"order", len(subs))], timeout=30)
    n = 2000
    pub = Conn(srv.port)
    replies = pub.pipeline([("PUBLISH", "order", str(i)) for i in range(n)])
    assert replies == [len(subs)] * n
    for c in subs:
        got = [c.read() for _ in range(n)]
        assert got == [[b"message", b"order", str(i).encode()] for i in range(n)]
        c.close()
    pub.close()


def test_resp3_pushes_arrive_between_replies(srv):
    c = Conn(srv.port)
    assert isinstance(c.cmd("HELLO", "3"), dict)
    assert c.cmd("SUBSCRIBE", "r3") == Push([b"subscribe", b"r3", 1])
    # A RESP3 subscriber still runs any command.
    assert c.cmd("SET", "r3key", "v") == "OK"
    other = Conn(srv.port)
    assert other.cmd("PUBLISH", "r3", "hi") == 1
    assert c.read() == Push([b"message", b"r3", b"hi"])
    assert c.cmd("GET", "r3key") == b"v"
    c.close()
    other.close()


def test_ioredis_subscriber_mode(srv):
    got = node_client.run_node(srv.port, "pubsub_client.js", 20)
    assert got["subscribed"] == 1 and got["psubscribed"] == 2
    # (ioredis itself refuses a plain command in subscriber mode.)
    assert "subscriber mode" in got["forbidden"]
    assert got["numsub"] == ["news", 1]
    assert got["receivers"] == [2] * 20
    assert got["messages"] == [["news", f"m{i}"] for i in range(20)]
    assert got["pmessages"] == [["ne*", "news", f"m{i}"] for i in range(20)]
    assert got["unsubscribed"] == 1
    assert got["afterPing"] == "PONG"


def rss_bytes(conn):
    info = conn.cmd("INFO", "memory").decode()
    for line in info.split("\r\n"):
        if line.startswith("used_memory_rss:"):
            return int(line.split(":")[1])
    raise AssertionError("no used_memory_rss")


def test_subscriber_that_never_reads_is_disconnected_and_memory_stays_bounded(srv, r):
    """100 MB published to a subscriber that reads nothing: it is closed at
    the pubsub class's hard limit (32 MB by default) and the server's RSS
    does not grow by anything like the 100 MB."""
    slow = Conn(srv.port)
    assert slow.cmd("SUBSCRIBE", "firehose") == [b"subscribe", b"firehose", 1]
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    watcher = Conn(srv.port)
    before = rss_bytes(watcher)
    # (A Redis 7.2 field; Redis 7.0 lacks it.)
    disconnections = r.info("stats").get("client_output_buffer_limit_disconnections")
    pub = Conn(srv.port)
    payload = "x" * (1 << 20)
    peak = before
    for batch in range(10):  # 100 messages of 1 MB, ten per pipeline
        pub.pipeline([("PUBLISH", "firehose", payload)] * 10)
        peak = max(peak, rss_bytes(watcher))
    wait_until(lambda: r.pubsub_numsub("firehose") == [(b"firehose", 0)], timeout=60)
    if disconnections is not None:
        assert r.info("stats")["client_output_buffer_limit_disconnections"] >= disconnections + 1
    # Generous: the limit is 32 MB; 100 MB kept would show as more than 90.
    # (With jemalloc, the release build's allocator: the sanitizer build's
    # keeps freed memory in quarantine, so there only the disconnection counts.)
    allocator = watcher.cmd("INFO", "memory").decode()
    if "mem_allocator:jemalloc" in allocator:
        assert peak - before < 90 * (1 << 20), (before, peak)
    assert watcher.cmd("PING") == "PONG"
    for c in (slow, watcher, pub):
        c.close()
