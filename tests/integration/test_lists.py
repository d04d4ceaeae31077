"""Lists under list-compress-depth: the interior nodes of a long list take
LZF's share of the memory, the ends stay as they are, every element reads
back the same (through a reload too), and a list keeps the depth it was made
with, as in Redis."""


LARDER_ARGS = ("--enable-debug-command", "yes")


def fill(conn, key, n):
    for start in range(0, n, 500):
        conn.cmd("RPUSH", key, *[f"session:{i % 50}:user:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" for i in range(start, start + 500)])


def test_compress_depth_shrinks_a_long_list_and_reads_back_the_same(larder, conn):
    assert conn.cmd("CONFIG", "SET", "list-compress-depth", "0") == "OK"
    fill(conn, "plain", 20000)
    assert conn.cmd("CONFIG", "SET", "list-compress-depth", "1") == "OK"
    fill(conn, "packed", 20000)
    try:
        plain = conn.cmd("MEMORY", "USAGE", "plain", "SAMPLES", "0")
        packed = conn.cmd("MEMORY", "USAGE", "packed", "SAMPLES", "0")
        # These elements compress well; only the two end nodes stay whole.
        assert packed * 3 < plain, (packed, plain)
        assert conn.cmd("LRANGE", "packed", "0", "-1") == conn.cmd("LRANGE", "plain", "0", "-1")
        for i in (0, 1, 777, 10000, 19998, -1):
            assert conn.cmd("LINDEX", "packed", str(i)) == conn.cmd("LINDEX", "plain", str(i))
        # Changes in the middle open the nodes they touch and close them again.
        for key in ("plain", "packed"):
            conn.cmd("LSET", key, "9000", "changed")
            conn.cmd("LINSERT", key, "BEFORE", "changed", "before-it")
            conn.cmd("LREM", key, "3", "session:7:user:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        assert conn.cmd("LRANGE", "packed", "0", "-1") == conn.cmd("LRANGE", "plain", "0", "-1")
        assert conn.cmd("MEMORY", "USAGE", "packed", "SAMPLES", "0") * 3 < plain
        # A list keeps its depth: with the setting back at 0, pushes to it
        # still leave its interior compressed.
        assert conn.cmd("CONFIG", "SET", "list-compress-depth", "0") == "OK"
        fill(conn, "packed", 5000)
        fill(conn, "plain", 5000)
        assert conn.cmd("MEMORY", "USAGE", "packed", "SAMPLES", "0") * 3 < conn.cmd("MEMORY", "USAGE", "plain",
                                                                                      "SAMPLES", "0")
        # Through the RDB and back: the loaded list takes the depth in force.
        before = conn.cmd("LRANGE", "packed", "0", "-1")
        assert conn.cmd("DEBUG", "RELOAD") == "OK"
        assert conn.cmd("LRANGE", "packed", "0", "-1") == before
        assert conn.cmd("LPOP", "packed") == before[0]
        assert conn.cmd("RPOP", "packed") == before[-1]
    finally:
        conn.cmd("CONFIG", "SET", "list-compress-depth", "0")
