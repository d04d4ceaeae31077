"""Scripted edge cases: every file in cases/ runs against both servers from an
empty keyspace, and every reply must match (see README.md to add one)."""
import glob
import os

import pytest

CASES = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "*.redis")))


@pytest.mark.parametrize("path", CASES, ids=[os.path.basename(p) for p in CASES])
def test_case_file(differ, path):
    with open(path) as f:
        differ.run_script(f.read(), os.path.basename(path))


def test_scan_iterates_the_same_keys(differ):
    for i in range(300):
        differ.run("SET", f"scan:{i}", "v")
    differ.run("SET", "other", "1")

    def full_scan(conn, *opts):
        seen, cursor = set(), b"0"
        while True:
            cursor, keys = conn.cmd("SCAN", cursor, *opts)
            seen.update(keys)
            if cursor == b"0":
                return seen

    for opts in [(), ("MATCH", "scan:1*"), ("COUNT", "7"), ("TYPE", "string"), ("TYPE", "list"),
                 ("MATCH", "oth*", "COUNT", "1000")]:
        assert full_scan(differ.redis, *opts) == full_scan(differ.larder, *opts), opts
    for bad in [("SCAN", "x"), ("SCAN", "0", "COUNT", "0"), ("SCAN", "0", "COUNT", "x"), ("SCAN", "0", "FOO", "1"),
                ("SCAN", "0", "MATCH")]:
        differ.run(*bad)
