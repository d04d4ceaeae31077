"""Cache-aside with stampede protection, using Larder's CACHE FETCH from
redis-py (python3-redis). However many processes ask for the same missing
key at once, exactly one computes it; the others wait for its value.

    python3 examples/cache-aside/fetch.py     # against localhost:6379
"""
import time

import redis

r = redis.Redis(decode_responses=True)


def cached(key, compute, ttl=300, lease_ms=5000, early_ms=10000):
    while True:
        reply = r.execute_command("CACHE", "FETCH", key, lease_ms, "EARLY", early_ms)
        if reply is None:  # the caller computing it was too slow or died: ask again
            continue
        status, value = reply
        if status == "hit":
            return value
        # "compute": ours to compute and store; "refresh": the key expires
        # within early_ms and we were picked to recompute it ahead of time.
        value = compute()
        r.set(key, value, ex=ttl)
        return value


def slow_report():
    time.sleep(0.5)  # a slow query, an API call...
    return "report body"


if __name__ == "__main__":
    print(cached("report:2026-11", slow_report))
