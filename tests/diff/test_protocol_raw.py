"""Raw request bytes, malformed or unusual, to both servers: the replies
(and where a server closes the connection) must match byte for byte. The
request parser reads numbers in one pass; these are the cases where that
could differ from Redis's string2ll-after-memchr."""
import socket

import pytest


def resp(*cmds):
    out = b""
    for cmd in cmds:
        out += b"*%d\r\n" % len(cmd)
        for a in cmd:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


CASES = [
    b"*01\r\n$4\r\nPING\r\n",             # leading zero in a count
    b"*-0\r\n*1\r\n$4\r\nPING\r\n",       # minus zero
    b"*+1\r\n$4\r\nPING\r\n",             # plus sign
    b"*1 \r\n$4\r\nPING\r\n",             # garbage before CR
    b"*1\r\n$04\r\nPING\r\n",             # leading zero in a length
    b"*1\r\n$-1\r\n",                     # negative length
    b"*1\r\n$+4\r\nPING\r\n",
    b"*1\r\n$4 \r\nPING\r\n",
    b"*1\r\n$4\nPING\r\n",                # LF without CR
    b"*0\r\n*1\r\n$4\r\nPING\r\n",        # empty multibulk, then a command
    b"*-5\r\n*1\r\n$4\r\nPING\r\n",
    b"*1\r\n$99999999999999999999\r\n",   # 20 digits
    b"*99999999999999999999\r\n",
    b"*1\r\n$9223372036854775808\r\n",    # one past INT64_MAX
    b"*1\r\n$0\r\n\r\n",                  # empty command name
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\n",
    b"*2\r\n$4\r\nECHO\r\n$99\r\n" + b"x" * 99 + b"\r\n",
    b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",  # the bytes after a bulk are not checked
    b"*1\r\nx4\r\nPING\r\n",              # not a bulk
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    # CLIENT REPLY: OFF drops every reply until ON, SKIP only the next one,
    # whichever shard the keys live on (keys a..h spread over both).
    resp(["CLIENT", "REPLY", "OFF"], ["SET", "a", "1"], ["SET", "b", "2"], ["GET", "a"], ["MGET", "a", "b", "c"],
         ["CLIENT", "REPLY", "ON"], ["GET", "b"], ["DEL", "a", "b"]),
    resp(["CLIENT", "REPLY", "SKIP"], ["SET", "c", "3"], ["GET", "c"], ["CLIENT", "REPLY", "SKIP"], ["INCR", "c"],
         ["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "ON"], ["GET", "c"], ["DEL", "c"]),
    resp(["CLIENT", "REPLY", "OFF"], ["CLIENT", "REPLY", "SKIP"], ["PING"], ["CLIENT", "REPLY", "ON"], ["PING"]),
    resp(["CLIENT", "REPLY", "OFF"], ["LPUSH", "d"], ["GET", "e"], ["CLIENT", "REPLY", "ON"], ["ECHO", "x"]),
]


def exchange(port, data):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(1.0)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                out += b"<closed>"
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


@pytest.mark.parametrize("data", CASES, ids=[repr(c)[2:30] for c in CASES])
def test_raw_request(servers, data):
    redis, larder = servers
    assert exchange(larder.port, data) == exchange(redis.port, data)
