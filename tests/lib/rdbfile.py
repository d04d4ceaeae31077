"""Pieces of Redis's RDB format for tests that build payloads and files by
hand: the CRC-64 (Jones polynomial, reflected, computed bit by bit from its
definition so that it does not share code with the server's), lengths and
strings."""


def crc64(data):
    poly = 0x95AC9329AC4BC9B5
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc


def with_crc(payload):
    """`payload` with its last 8 bytes replaced by the CRC-64 of the rest."""
    body = payload[:-8]
    return body + crc64(body).to_bytes(8, "little")


def length(n):
    """An RDB length (6-bit, 14-bit or 32-bit form)."""
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + n.to_bytes(4, "big")


def string(s):
    s = s.encode() if isinstance(s, str) else s
    return length(len(s)) + s


def file(records, version=10):
    """A whole file: header, `records` (bytes), EOF and the checksum."""
    body = b"REDIS%04d" % version + records + b"\xff"
    return body + crc64(body).to_bytes(8, "little")
