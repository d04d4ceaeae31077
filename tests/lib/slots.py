"""Where Larder keeps a key: Redis Cluster's slot (CRC16/XMODEM of the key,
or of its {hash tag}, mod 16384), and the shard that owns that slot."""


def key_slot(key):
    if isinstance(key, str):
        key = key.encode()
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    crc = 0
    for b in key:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc % 16384


def shard_of(key, shards):
    """Shard i owns the slots [i * 16384 / N, (i + 1) * 16384 / N)."""
    return key_slot(key) * shards // 16384
