#!/usr/bin/env python3
"""Offline miss-ratio simulation of eviction algorithms on the traces in
../shared/traces, counting objects (every object the same size), cold start,
fill on every miss. Used to choose Larder's modern policy; the server-level
comparison (real servers, real memory limits) is bench/trace_replay.py.

    python3 bench/policy_sim.py [--traces web12,orm-busy] [--sizes 0.01,0.1]
        [--policies opt,lru,s3fifo,...]

`opt` (Belady, offline) is the lower bound no policy can beat.
"""
import argparse
import collections
import heapq
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from traces import TRACES, load_trace  # noqa: E402


def lru(trace, cap):
    cache, miss = collections.OrderedDict(), 0
    for k in trace:
        if k in cache:
            cache.move_to_end(k)
        else:
            miss += 1
            cache[k] = 1
            if len(cache) > cap:
                cache.popitem(last=False)
    return miss / len(trace)


def sieve(trace, cap):
    """SIEVE (NSDI'24): one FIFO, a visited bit, a hand moving tail to head."""
    # Doubly linked list over dicts: prev/next keyed by object.
    prev, nxt, visited = {}, {}, {}
    head = tail = hand = None
    miss = 0
    for k in trace:
        if k in visited:
            visited[k] = True
            continue
        miss += 1
        if len(visited) >= cap:
            o = hand if hand is not None else tail
            while visited[o]:
                visited[o] = False
                o = prev[o] if prev[o] is not None else tail
            hand = prev[o]
            p, n = prev.pop(o), nxt.pop(o)
            del visited[o]
            if p is not None: nxt[p] = n
            else: head = n
            if n is not None: prev[n] = p
            else: tail = p
        prev[k], nxt[k], visited[k] = None, head, False
        if head is not None: prev[head] = k
        head = k
        if tail is None: tail = k
    return miss / len(trace)


def s3fifo(trace, cap, small_ratio=0.1, threshold=1, ghost_ratio=0.9):
    """S3-FIFO (SOSP'23): small FIFO, main FIFO, ghost FIFO of keys; 2-bit
    frequencies; an object leaves the small queue for main if it was read
    more than `threshold` - 1 times there."""
    small, main, ghost = collections.deque(), collections.deque(), collections.deque()
    freq, where, ghost_set = {}, {}, collections.Counter()
    small_cap = max(1, int(cap * small_ratio))
    ghost_cap = max(1, int(cap * ghost_ratio))
    miss = 0

    def to_ghost(k):
        ghost.append(k)
        ghost_set[k] += 1
        if len(ghost) > ghost_cap:
            g = ghost.popleft()
            ghost_set[g] -= 1
            if not ghost_set[g]:
                del ghost_set[g]

    def evict():
        while True:
            if len(small) > small_cap or not main:
                k = small.popleft()
                if freq[k] >= threshold:
                    freq[k] = 0
                    where[k] = 1
                    main.append(k)
                else:
                    del freq[k], where[k]
                    to_ghost(k)
                    return
            else:
                k = main.popleft()
                if freq[k] > 0:
                    freq[k] -= 1
                    main.append(k)
                else:
                    del freq[k], where[k]
                    return

    for k in trace:
        if k in freq:
            if freq[k] < 3:
                freq[k] += 1
            continue
        miss += 1
        if len(freq) >= cap:
            evict()
        freq[k] = 0
        if k in ghost_set:
            where[k] = 1
            main.append(k)
        else:
            where[k] = 0
            small.append(k)
    return miss / len(trace)


def clock_random(trace, cap, samples=5):
    """What a sampled server can do without queues: a visited bit per key and
    a hand over the hash table's (unordered) slots: CLOCK in random order."""
    import random
    rng = random.Random(1)
    slots, pos, visited = [], {}, {}
    hand, miss = 0, 0
    for k in trace:
        if k in visited:
            visited[k] = True
            continue
        miss += 1
        if len(visited) >= cap:
            while True:
                hand %= len(slots)
                o = slots[hand]
                if visited[o]:
                    visited[o] = False
                    hand += 1
                else:
                    break
            last = slots.pop()
            if last != o:
                slots[hand] = last
                pos[last] = hand
            del visited[o], pos[o]
        # insert at a random slot (hash order), moving the occupant to the end
        i = rng.randint(0, len(slots))
        slots.append(k)
        pos[k] = len(slots) - 1
        if i < len(slots) - 1:
            other = slots[i]
            slots[i], slots[-1] = k, other
            pos[k], pos[other] = i, len(slots) - 1
        visited[k] = False
    return miss / len(trace)


def wtinylfu(trace, cap, window_ratio=0.01):
    """W-TinyLFU (Caffeine) with a fixed window: a window LRU (1%) in front
    of a segmented LRU (20% probation, 80% protected); a key leaving the
    window enters the main space only if it is more frequent than main's
    victim. Frequencies are exact counts halved every 10 x cap requests (an
    ideal sketch). wtinylfu_adaptive() without its hill climbing."""
    return wtinylfu_adaptive(trace, cap, window_ratio=window_ratio, step_ratio=0)


def belady(trace, cap):
    """Belady's OPT with fill on every miss: evicts the cached key whose next
    request is farthest away (or never comes). No online policy can miss
    less at the same size, so it bounds what any policy could gain."""
    never = len(trace)
    next_use = [never] * len(trace)
    last = {}
    for i in range(len(trace) - 1, -1, -1):
        k = trace[i]
        next_use[i] = last.get(k, never)
        last[k] = i
    cached = {}  # key -> its next request
    heap = []    # (-next request, key), stale entries skipped
    miss = 0
    for i, k in enumerate(trace):
        nu = next_use[i]
        if k not in cached:
            miss += 1
            if len(cached) >= cap:
                while True:
                    neg, victim = heapq.heappop(heap)
                    if cached.get(victim) == -neg:
                        del cached[victim]
                        break
        cached[k] = nu
        heapq.heappush(heap, (-nu, k))
    return miss / len(trace)


def wtinylfu_adaptive(trace, cap, window_ratio=0.01, step_ratio=0.0625, decay=0.98):
    """W-TinyLFU with Caffeine's hill climbing: every 10 x cap requests the
    hit ratio of the last period is compared with the one before; the window
    moves by a step (6.25% of the cache at first, shrinking 2% per period)
    in the same direction while the hit ratio improves, and turns back when
    it falls (step_ratio 0: a fixed window, wtinylfu()). Exact counts halved
    every 10 x cap requests (an ideal sketch)."""
    window, prob, prot = collections.OrderedDict(), collections.OrderedDict(), collections.OrderedDict()
    wcap = max(1, int(cap * window_ratio))
    freq = collections.Counter()
    period = 10 * cap
    ops = hits_in_period = 0
    prev_rate, step = None, step_ratio * cap
    miss = 0

    def main_cap():
        return max(1, cap - wcap)

    def fit():
        # Moves keys between window and main after the window changed size.
        while len(window) > wcap:
            cand, _ = window.popitem(last=False)
            prob[cand] = 1
        while len(prob) + len(prot) > main_cap():
            src = prob if prob else prot
            k, _ = src.popitem(last=False)
            if len(window) < wcap:
                window[k] = 1
                window.move_to_end(k, last=False)
        while len(prot) > int(main_cap() * 0.8):
            d, _ = prot.popitem(last=False)
            prob[d] = 1

    for k in trace:
        freq[k] += 1
        ops += 1
        if ops >= period:
            ops = 0
            for key in list(freq):
                freq[key] //= 2
                if not freq[key]:
                    del freq[key]
            rate = hits_in_period / period
            if prev_rate is not None and rate < prev_rate:
                step = -step
            prev_rate = rate
            hits_in_period = 0
            wcap = min(cap - 1, max(1, int(wcap + step)))
            step *= decay
            fit()
        if k in window:
            window.move_to_end(k)
            hits_in_period += 1
            continue
        if k in prot:
            prot.move_to_end(k)
            hits_in_period += 1
            continue
        if k in prob:
            hits_in_period += 1
            del prob[k]
            prot[k] = 1
            if len(prot) > int(main_cap() * 0.8):
                d, _ = prot.popitem(last=False)
                prob[d] = 1
            continue
        miss += 1
        window[k] = 1
        if len(window) > wcap:
            cand, _ = window.popitem(last=False)
            if len(prob) + len(prot) < main_cap():
                prob[cand] = 1
            else:
                victim = next(iter(prob)) if prob else next(iter(prot))
                if freq[cand] > freq[victim]:
                    (prob if victim in prob else prot).pop(victim)
                    prob[cand] = 1
    return miss / len(trace)


POLICIES = {
    "opt": belady,
    "lru": lru,
    "sieve": sieve,
    "s3fifo": s3fifo,
    "s3fifo-t2": lambda t, c: s3fifo(t, c, threshold=2),
    "wtinylfu": wtinylfu,
    "wtinylfu-adaptive": wtinylfu_adaptive,
    "clock-hash-order": clock_random,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", default=",".join(TRACES))
    ap.add_argument("--sizes", default="0.01,0.1")
    ap.add_argument("--policies", default=",".join(p for p in POLICIES if p != "opt"))
    a = ap.parse_args()
    print("| trace | size | " + " | ".join(a.policies.split(",")) + " |")
    print("|---|---|" + "---|" * len(a.policies.split(",")))
    for name in a.traces.split(","):
        trace = load_trace(name)
        uniq = len(set(trace))
        for s in a.sizes.split(","):
            cap = max(1, int(uniq * float(s)))
            row = [f"{POLICIES[p](trace, cap):.4f}" for p in a.policies.split(",")]
            print(f"| {name} | {float(s):.0%} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
