"""Active defragmentation (engine/defrag.h): its settings, and a pass that
brings allocator fragmentation down without changing the data. The
fragmentation is made as Redis's own test makes it (memefficiency.tcl,
"Active defrag"): fill to maxmemory with one size, then overwrite with
twice the size, so that LRU eviction leaves the first size's slabs sparse.
Builds without jemalloc (the sanitizer build) refuse activedefrag yes with
Redis's message and are checked for that instead."""
import subprocess

import pytest
from resp import Error
from server import larder_bin, start_larder, wait_until

DEFRAG_DEFAULTS = {"activedefrag": b"no", "active-defrag-ignore-bytes": b"104857600",
                   "active-defrag-threshold-lower": b"10", "active-defrag-threshold-upper": b"100",
                   "active-defrag-cycle-min": b"1", "active-defrag-cycle-max": b"25",
                   "active-defrag-max-scan-fields": b"1000"}

DEFRAG_REFUSED = ("Active defragmentation cannot be enabled: it requires a Redis server compiled with a "
                  "modified Jemalloc like the one shipped by default with the Redis source distribution")


def info(conn, section):
    text = conn.cmd("INFO", section).decode()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


@pytest.fixture(scope="module")
def jemalloc():
    s = start_larder(threads=1)
    try:
        c = s.conn()
        yield info(c, "memory")["mem_allocator"].startswith("jemalloc")
        c.close()
    finally:
        s.stop()


def test_settings_are_kept_and_rewritten(jemalloc):
    s = start_larder(config_text="active-defrag-cycle-max 40\n")
    try:
        c = s.conn()
        for name, value in DEFRAG_DEFAULTS.items():
            want = b"40" if name == "active-defrag-cycle-max" else value
            assert c.cmd("CONFIG", "GET", name) == [name.encode(), want]
        assert c.cmd("CONFIG", "SET", "active-defrag-cycle-min", "5", "active-defrag-ignore-bytes", "200mb",
                     "active-defrag-max-scan-fields", "2000", "activedefrag", "no") == "OK"
        if jemalloc:
            assert c.cmd("CONFIG", "SET", "activedefrag", "yes") == "OK"
            assert c.cmd("CONFIG", "GET", "activedefrag") == [b"activedefrag", b"yes"]
        else:
            assert c.cmd("CONFIG", "SET", "activedefrag", "yes") == Error(
                "ERR CONFIG SET failed (possibly related to argument 'activedefrag') - " + DEFRAG_REFUSED)
        assert c.cmd("CONFIG", "REWRITE") == "OK"
        text = open(s.config_path).read()
        for line in ("active-defrag-cycle-max 40", "active-defrag-cycle-min 5",
                     "active-defrag-ignore-bytes 209715200", "active-defrag-max-scan-fields 2000",
                     "activedefrag " + ("yes" if jemalloc else "no")):
            assert line in text.splitlines(), (line, text)
        c.close()
        # The rewritten file loads back with the same values.
        s2 = start_larder(config_text=text)
        try:
            c2 = s2.conn()
            assert c2.cmd("CONFIG", "GET", "active-defrag-ignore-bytes") == [b"active-defrag-ignore-bytes", b"209715200"]
            assert c2.cmd("CONFIG", "GET", "active-defrag-cycle-min") == [b"active-defrag-cycle-min", b"5"]
            c2.close()
        finally:
            s2.stop()
    finally:
        s.stop()


def test_activedefrag_yes_at_startup(jemalloc, tmp_path):
    if jemalloc:
        s = start_larder(["--activedefrag", "yes"])
        try:
            c = s.conn()
            assert c.cmd("CONFIG", "GET", "activedefrag") == [b"activedefrag", b"yes"]
            c.close()
        finally:
            s.stop()
        return
    path = tmp_path / "defrag.conf"
    path.write_text("activedefrag yes\n")
    r = subprocess.run([larder_bin(), str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "at line 1" in r.stderr and DEFRAG_REFUSED in r.stderr
    r = subprocess.run([larder_bin(), "--activedefrag", "yes"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and DEFRAG_REFUSED in r.stderr


def fill(c, n, size, char):
    for start in range(0, n, 2000):
        c.pipeline([("SETRANGE", str(i), str(size), char) for i in range(start, min(n, start + 2000))])


def defrag_until_done(c):
    """Turns activedefrag on with low thresholds and waits for the passes to end."""
    for name, value in [("active-defrag-ignore-bytes", "1mb"), ("active-defrag-threshold-lower", "5"),
                        ("active-defrag-cycle-min", "50"), ("active-defrag-cycle-max", "75")]:
        assert c.cmd("CONFIG", "SET", name, value) == "OK"

    def moved():
        stats = info(c, "stats")
        return int(stats["active_defrag_hits"]) + int(stats["active_defrag_misses"])

    before = moved()
    assert c.cmd("CONFIG", "SET", "activedefrag", "yes") == "OK"

    def started():
        # Running now, or a pass short enough to have ended between two polls.
        return info(c, "memory")["active_defrag_running"] != "0" or moved() > before

    assert wait_until(started, timeout=60)
    assert wait_until(lambda: info(c, "memory")["active_defrag_running"] == "0", timeout=300)


def test_a_pass_lowers_fragmentation_and_keeps_the_data(jemalloc):
    if not jemalloc:
        pytest.skip("activedefrag needs jemalloc (refused in this build: test_activedefrag_yes_at_startup)")
    s = start_larder(["--enable-debug-command", "yes", "--maxmemory", "40mb", "--maxmemory-policy", "allkeys-lru"])
    try:
        c = s.conn()
        fill(c, 280000, 150, "a")
        fill(c, 70000, 300, "b")
        before = float(info(c, "memory")["allocator_frag_ratio"])
        assert before >= 1.3, before  # the set-up made the fragmentation the pass is to remove
        c.cmd("CONFIG", "SET", "maxmemory", "60mb")  # no eviction from here on: the digest must hold
        digest, keys = c.cmd("DEBUG", "DIGEST"), c.cmd("DBSIZE")
        defrag_until_done(c)
        after = float(info(c, "memory")["allocator_frag_ratio"])
        stats = info(c, "stats")
        assert after < 1.1, (before, after, stats)
        assert int(stats["active_defrag_hits"]) > 0 and int(stats["active_defrag_key_hits"]) > 0
        assert int(stats["active_defrag_misses"]) > 0
        assert c.cmd("DBSIZE") == keys, info(c, "stats")["evicted_keys"]
        assert c.cmd("DEBUG", "DIGEST") == digest
        for _ in range(100):  # values still read back whole
            v = c.cmd("GET", c.cmd("RANDOMKEY"))
            # 150 B written (SETRANGE 150 'a'), 300 B over nothing or over it.
            assert v in (b"\x00" * 150 + b"a", b"\x00" * 300 + b"b", b"\x00" * 150 + b"a" + b"\x00" * 149 + b"b")
        # CONFIG RESETSTAT clears the counters.
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        assert info(c, "stats")["active_defrag_hits"] == "0"
        c.close()
    finally:
        s.stop()


@pytest.mark.parametrize("shape", ["small hashes", "hash and set tables"])
def test_a_pass_moves_the_blocks_of_collections(jemalloc, shape):
    """Collections fragment through their own blocks, not the key's: a small
    hash's packed list grows into another size class with its fields;
    a hash or set table's member nodes are freed one by one. A pass moves
    those blocks too (tables up to active-defrag-max-scan-fields members)."""
    if not jemalloc:
        pytest.skip("activedefrag needs jemalloc")
    s = start_larder(["--enable-debug-command", "yes"])
    try:
        c = s.conn()
        if shape == "small hashes":
            n = 150000
            for start in range(0, n, 2000):
                c.pipeline([("HSET", f"h{i}", "f1", "a" * 40, "f2", "a" * 40, "f3", "a" * 40, "f4", "a" * 40)
                            for i in range(start, start + 2000)])
            # Three hashes of four: the packed list moves to a bigger size class.
            for start in range(0, n, 2000):
                c.pipeline([("HSET", f"h{i}", "f5", "b" * 60, "f6", "b" * 60, "f7", "b" * 60, "f8", "b" * 60)
                            for i in range(start, start + 2000) if i % 4])
        else:
            for k in range(300):
                c.pipeline([("HSET", f"h{k}", f"f{j}", "v" * 100) for j in range(300)] +
                           [("SADD", f"s{k}", f"{j:0100d}") for j in range(300)])
            for k in range(300):  # free two nodes of every three
                c.pipeline([("HDEL", f"h{k}", f"f{j}") for j in range(300) if j % 3] +
                           [("SREM", f"s{k}", f"{j:0100d}") for j in range(300) if j % 3])
        before = float(info(c, "memory")["allocator_frag_ratio"])
        assert before >= 1.2, before  # the set-up made fragmentation to remove
        digest = c.cmd("DEBUG", "DIGEST")
        defrag_until_done(c)
        after = float(info(c, "memory")["allocator_frag_ratio"])
        assert after < 1.1, (before, after, info(c, "stats"))
        assert c.cmd("DEBUG", "DIGEST") == digest
        if shape == "small hashes":
            assert c.cmd("HGET", "h1", "f8") == b"b" * 60 and c.cmd("HLEN", "h1") == 8
            assert c.cmd("HGET", "h4", "f4") == b"a" * 40 and c.cmd("HLEN", "h4") == 4
            assert c.cmd("OBJECT", "ENCODING", "h1") == b"listpack"
        else:
            assert c.cmd("OBJECT", "ENCODING", "s7") == b"hashtable"
            assert c.cmd("SCARD", "s7") == 100 and c.cmd("SISMEMBER", "s7", f"{3:0100d}") == 1
            assert c.cmd("HGET", "h7", "f3") == b"v" * 100 and c.cmd("HLEN", "h7") == 100
        c.close()
    finally:
        s.stop()


def test_debug_mallctl_reads_and_writes_the_allocator(jemalloc):
    s = start_larder(["--enable-debug-command", "yes"], threads=1)
    try:
        c = s.conn()
        if not jemalloc:
            assert c.cmd("DEBUG", "MALLCTL", "arenas.page") == Error("ERR Operation not supported")
            return
        page = c.cmd("DEBUG", "MALLCTL", "arenas.page")
        assert page >= 4096 and page & (page - 1) == 0, page
        version = c.cmd("DEBUG", "MALLCTL-STR", "version").decode()
        assert info(c, "memory")["mem_allocator"] == "jemalloc-" + version.split("-")[0]
        assert c.cmd("DEBUG", "MALLCTL", "no.such.setting") == Error("ERR No such file or directory")
        assert c.cmd("DEBUG", "MALLCTL", "arenas.page", "x") == Error("ERR value is not an integer or out of range")
        # A write-only control runs and answers OK; a writable one returns its old value.
        assert c.cmd("DEBUG", "MALLCTL-STR", "thread.tcache.flush", "VOID") == "OK"
        old = c.cmd("DEBUG", "MALLCTL", "arena.0.dirty_decay_ms", "5000")
        assert c.cmd("DEBUG", "MALLCTL", "arena.0.dirty_decay_ms") == 5000
        assert c.cmd("DEBUG", "MALLCTL", "arena.0.dirty_decay_ms", str(old)) == 5000
        c.close()
    finally:
        s.stop()


def test_defragments_while_an_aof_replays(jemalloc):
    """DEBUG LOADAOF replays with every shard parked; defragmentation still
    runs between its commands (Redis's whileBlockedCron). The file makes
    fragmentation half-way (200,000 SETs, then every other key deleted) and
    then replays 300,000 INCRs slowed by key-load-delay -10, seconds in which
    the once-a-second decision is sure to come."""
    if not jemalloc:
        pytest.skip("activedefrag needs jemalloc")
    s = start_larder(["--enable-debug-command", "yes", "--appendonly", "yes", "--activedefrag", "yes",
                      "--active-defrag-ignore-bytes", "1mb", "--active-defrag-threshold-lower", "5",
                      "--active-defrag-cycle-min", "50", "--active-defrag-cycle-max", "75"])
    try:
        c = s.conn()
        fill(c, 200000, 150, "a")
        for start in range(0, 200000, 4000):
            c.pipeline([("DEL", str(i)) for i in range(start, start + 4000, 2)])
        for _ in range(150):
            c.pipeline([("INCR", "counter")] * 2000)
        assert wait_until(lambda: info(c, "memory")["active_defrag_running"] == "0", timeout=300)
        digest = c.cmd("DEBUG", "DIGEST")
        assert c.cmd("CONFIG", "SET", "key-load-delay", "-10") == "OK"
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        assert c.cmd("CONFIG", "SET", "latency-monitor-threshold", "1") == "OK"
        assert c.cmd("DEBUG", "LOADAOF") == "OK"
        assert int(info(c, "stats")["active_defrag_hits"]) > 0
        # The slices ran on the replaying thread (the parked shards' cron).
        assert b"while-blocked-cron" in [e[0] for e in c.cmd("LATENCY", "LATEST")]
        assert c.cmd("DEBUG", "DIGEST") == digest
        assert c.cmd("GET", "counter") == b"300000"
        c.close()
    finally:
        s.stop()
