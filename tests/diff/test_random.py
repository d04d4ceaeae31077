"""Seeded random differential run: at least 100,000 commands mixing the string,
key and expiry commands over a small key pool, replies compared one by one.
LARDER_DIFF_SEED and LARDER_DIFF_COUNT override the defaults."""
import os

from generator import commands


def run_random(differ, families, seed_offset=0):
    seed = int(os.environ.get("LARDER_DIFF_SEED", "20261122")) + seed_offset
    count = int(os.environ.get("LARDER_DIFF_COUNT", "100000"))
    batch = []
    for args in commands(seed, count, families):
        batch.append(args)
        # SELECT changes what follows; keep batches short enough to stay in step.
        if len(batch) == 200:
            differ.run_batch(batch)
            batch = []
    if batch:
        differ.run_batch(batch)
    assert differ.count >= count


def test_random_strings_keys_expiry(differ):
    run_random(differ, ("string", "keys", "expiry"))


def test_random_hashes(differ):
    # Hash commands mixed with the generic key and string ones, so that
    # RENAME, COPY, DEL, TYPE and WRONGTYPE errors meet hashes too.
    run_random(differ, ("hash", "keys", "expiry", "string"), seed_offset=1)


def test_random_sets(differ):
    run_random(differ, ("set", "keys", "hash"), seed_offset=2)


def test_random_lists(differ):
    run_random(differ, ("list", "keys", "string"), seed_offset=3)


def test_random_sorted_sets(differ):
    # With sets in the mix: ZUNION/ZINTER accept plain sets as inputs.
    run_random(differ, ("zset", "keys", "set"), seed_offset=4)


def test_random_bitmaps(differ):
    # With the string commands: bitmaps are strings (GET, APPEND, SETRANGE...).
    run_random(differ, ("bitmap", "string", "keys"), seed_offset=5)


def test_random_geo(differ):
    run_random(differ, ("geo", "zset", "keys"), seed_offset=6)


def test_random_hyperloglog(differ):
    # With the string commands: an HLL is a string (APPEND or SETRANGE on one
    # makes it invalid, which PFADD/PFCOUNT must then report as Redis does).
    run_random(differ, ("hll", "string", "keys"), seed_offset=7)


def test_random_sort(differ):
    # With lists, sets and hashes: the sources and the keys the BY/GET
    # patterns name change under SORT, and STORE writes lists that the list
    # commands read (the sort family makes its own sorted sets). No string
    # family: an overflowing INCRBYFLOAT can leave errno at ERANGE in Redis,
    # which its SORT then reads (sort.redis explains).
    run_random(differ, ("sort", "list", "set", "hash", "keys"), seed_offset=8)


# Every type family inside MULTI/EXEC blocks and one-command scripts. The
# wrappers draw from the families named beside them.
# (No sort: see test_random_sort.)
ALL_TYPES = ("string", "keys", "expiry", "hash", "set", "list", "zset", "bitmap", "geo", "hll", "stream")


def test_random_transactions(differ):
    run_random(differ, ("multi",) + ALL_TYPES, seed_offset=9)


def test_random_scripts(differ):
    run_random(differ, ("eval",) + ALL_TYPES, seed_offset=10)


def test_random_scripts_in_transactions(differ):
    run_random(differ, ("multi", "eval") + ALL_TYPES, seed_offset=11)


def test_random_streams(differ):
    # With the generic key commands (TYPE, RENAME, COPY, DEL meet streams)
    # and strings (WRONGTYPE both ways). Explicit IDs only.
    run_random(differ, ("stream", "keys", "string"), seed_offset=20)
