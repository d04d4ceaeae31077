"""Readers for the public cache traces in ../shared/traces (see its README):
each returns the list of keys, one per request."""
import array
import lzma
import os
import subprocess

DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "traces")

TRACES = {
    "web12": ("cache2k_web12.trace.xz", "i"),
    "orm-busy": ("cache2k_orm-busy.trace.xz", "i"),
    "scarab": ("scarab_recs.trace.xz", "q"),
    "oltp": ("arc_OLTP.lis.zst", None),
}


def load_trace(name, directory=DIR):
    fname, code = TRACES[name]
    path = os.path.join(directory, fname)
    if code:
        a = array.array(code, lzma.open(path).read())
        if __import__("sys").byteorder == "little":
            a.byteswap()
        return a.tolist()
    out = []
    text = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout.decode()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        start, count = int(parts[0]), int(parts[1])
        out.extend(range(start, start + count))
    return out
