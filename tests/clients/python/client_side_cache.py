"""redis-py's client-side cache (redis-py 5.1+: RESP3 and CLIENT TRACKING)
against a server: driven by tests/integration/test_client_side_caching.py,
run with a redis-py newer than Debian 12's on PYTHONPATH (scripts/deps.sh
fetches Debian 13's python3-redis into .deps/redis-py).

    python3 client_side_cache.py <port> <rule key> <new value of the rule key>

Prints one JSON line after the first phase, waits for a line on stdin (the
test has changed the rule key's row in the database), prints the final
JSON line: the same protocol as tests/clients/node/client_side_cache.js."""
import json
import sys
import time

import redis
from redis.cache import CacheConfig


def get_calls(admin):
    stats = admin.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


def poll(read, ok, seconds=10.0):
    end = time.monotonic() + seconds
    v = read()
    while not ok(v) and time.monotonic() < end:
        time.sleep(0.02)
        v = read()
    return v


def main():
    port, rule_key, rule_new = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cached = redis.Redis(port=port, protocol=3, cache_config=CacheConfig(), decode_responses=True)
    writer = redis.Redis(port=port)
    cache = cached.get_cache()
    out = {"version": redis.__version__}

    # A plain key: the second read is served by the local cache.
    writer.set("csc:plain", "v1")
    calls0 = get_calls(writer)
    out["first"] = cached.get("csc:plain")
    out["second"] = cached.get("csc:plain")
    out["server_gets"] = get_calls(writer) - calls0
    out["hits"] = None  # (redis-py's cache keeps no hit count: server_gets tells)
    out["cached_entries"] = cache.size  # (a property)
    # Another client's write invalidates it: the next read asks the server.
    writer.set("csc:plain", "v2")
    out["after_write"] = poll(lambda: cached.get("csc:plain"), lambda v: v == "v2")

    # A caching rule's key: loaded from the database, then served locally.
    calls1 = get_calls(writer)
    out["rule_first"] = cached.get(rule_key)
    out["rule_second"] = cached.get(rule_key)
    out["rule_server_gets"] = get_calls(writer) - calls1
    out["rule_hits"] = None
    print(json.dumps(out), flush=True)

    # The row changes in the database (not through the server): the cache
    # learns it from the server's invalidation.
    sys.stdin.readline()
    t0 = time.monotonic()
    out["rule_after_update"] = poll(lambda: cached.get(rule_key), lambda v: v == rule_new, 15.0)
    out["update_ms"] = int((time.monotonic() - t0) * 1000)
    print(json.dumps(out), flush=True)
    cached.close()
    writer.close()


if __name__ == "__main__":
    main()
