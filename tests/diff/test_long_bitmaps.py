"""Bitmaps long enough for the word-at-a-time paths (BITCOUNT, BITPOS and
BITOP work eight and 32 bytes at a time), with ranges that start and end
inside words and bytes, compared reply for reply with redis-server."""
import random


def test_bitcount_bitpos_bitop_over_long_values(differ):
    rng = random.Random(16)
    for n, kind in ((1000, "random"), (4099, "sparse"), (777, "ones"), (70, "random"), (4096, "zero")):
        if kind == "random":
            v = bytes(rng.randrange(256) for _ in range(n))
        elif kind == "sparse":
            b = bytearray(n)
            for _ in range(5):
                b[rng.randrange(n)] = 1 << rng.randrange(8)
            v = bytes(b)
        elif kind == "ones":
            b = bytearray(b"\xff" * n)
            b[rng.randrange(n)] = 0xfe
            v = bytes(b)
        else:
            v = bytes(n)
        differ.run("SET", f"b:{kind}:{n}", v)
    keys = [k for k in differ.redis.cmd("KEYS", "b:*")]
    for k in keys:
        n = differ.redis.cmd("STRLEN", k)
        differ.run("BITCOUNT", k)
        differ.run("BITPOS", k, "1")
        differ.run("BITPOS", k, "0")
        for _ in range(25):
            a, b = rng.randrange(-n - 3, n + 3), rng.randrange(-n - 3, n + 3)
            differ.run("BITCOUNT", k, str(a), str(b))
            differ.run("BITCOUNT", k, str(a * 8 + rng.randrange(8)), str(b * 8 + rng.randrange(8)), "BIT")
            differ.run("BITPOS", k, str(rng.randrange(2)), str(a))
            differ.run("BITPOS", k, str(rng.randrange(2)), str(a), str(b))
            differ.run("BITPOS", k, str(rng.randrange(2)), str(a * 8 + 3), str(b * 8 + 5), "BIT")
    for op in ("AND", "OR", "XOR"):
        differ.run("BITOP", op, "dst", *keys)
        differ.run("GET", "dst")
        differ.run("BITOP", op, "dst", keys[0], keys[1], "missing")
        differ.run("GET", "dst")
        differ.run("BITOP", op, keys[0], keys[0], keys[2])  # the destination is a source
        differ.run("GET", keys[0])
    for k in keys:
        differ.run("BITOP", "NOT", "dst", k)
        differ.run("GET", "dst")
