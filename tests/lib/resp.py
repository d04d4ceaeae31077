"""A small RESP2/RESP3 client for tests: raw sockets, no client library in
between, so tests see exactly what the server sends."""
import socket


class Error(Exception):
    """An error reply (-ERR ...), kept as a value so tests can compare it."""

    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg

    def __eq__(self, other):
        return isinstance(other, Error) and other.msg == self.msg

    def __hash__(self):
        return hash(self.msg)

    def __repr__(self):
        return f"Error({self.msg!r})"


class Push(list):
    """A RESP3 push message."""


class Verbatim(bytes):
    """A RESP3 verbatim string (format prefix removed)."""


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, host="127.0.0.1", timeout=30, source=None):
        # source: the local address to connect from ("127.0.0.2" is a peer
        # that Redis's protected mode does not count as local).
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = self.buf[:i]
                self.buf = self.buf[i + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data = self.buf[:n]
        self.buf = self.buf[n + 2:]
        return data

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return Error(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self.read() for _ in range(n)]
            if t == b"~":
                return ("set", items)
            if t == b">":
                return Push(items)
            return items
        if t == b"%":
            n = int(rest)
            return {"map": [(self.read(), self.read()) for _ in range(n)]}
        if t == b"_":
            return None
        if t == b",":
            return ("double", rest.decode())
        if t == b"#":
            return rest == b"t"
        if t == b"(":
            return ("bignum", rest.decode())
        if t == b"=":
            data = self._exact(int(rest))
            return Verbatim(data[4:])
        raise ValueError(f"bad reply type {line!r}")

    def cmd(self, *args):
        self.send_raw(encode(*args))
        return self.read()

    def pipeline(self, commands):
        self.send_raw(b"".join(encode(*c) for c in commands))
        return [self.read() for _ in commands]
