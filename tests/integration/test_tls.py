"""TLS: tls-port beside the plain port, client certificates (tls-auth-clients),
reloading the certificate with CONFIG SET, refusing bad files, and real
clients (redis-cli --tls, redis-py, ioredis) over it. The certificates are made
at test time with the openssl tool (tests/lib/certs.py)."""
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from certs import make_certs, server_args
from resp import Conn, Error, encode
from server import ROOT, Server, free_port, larder_bin, start_larder, wait_until

NODE_DIR = os.path.join(ROOT, "tests", "clients", "node")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("the openssl tool is not installed")
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def client_context(certs, cert=True, cafile=None, **kw):
    ctx = ssl.create_default_context(cafile=cafile or certs.ca)
    if cert:
        ctx.load_cert_chain(certs.client_crt, certs.client_key)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


class TlsConn(Conn):
    """resp.Conn over a TLS socket."""

    def __init__(self, port, ctx, timeout=30):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buf = b""

    def peer_cn(self):
        subject = dict(x[0] for x in self.sock.getpeercert()["subject"])
        return subject["commonName"]


def start_tls(certs, extra=(), auth="yes", port=None):
    """A larder-server with a plain port (the harness's) and a TLS port."""
    tls_port = free_port()
    s = start_larder(args=["--tls-port", str(tls_port)] + server_args(certs, auth) + list(extra))
    s.tls_port = tls_port
    return s


@pytest.fixture(scope="module")
def srv(certs):
    s = start_tls(certs)
    yield s
    s.stop()


def refused(port, ctx):
    """True if the server ends the connection instead of answering PING."""
    try:
        c = TlsConn(port, ctx, timeout=10)
        c.send_raw(encode("PING"))
        c._fill()
    except (ssl.SSLError, ConnectionError, OSError):
        return True
    return False


def test_plain_and_tls_ports_at_once(srv, certs):
    plain = srv.conn()
    tls = TlsConn(srv.tls_port, client_context(certs))
    assert tls.cmd("SET", "both", "v") == "OK"
    assert plain.cmd("GET", "both") == b"v"
    assert tls.cmd("PING") == "PONG"
    # INFO's tcp_port stays the plain port (Redis: port, else tls-port).
    info = plain.cmd("INFO", "server").decode()
    assert f"tcp_port:{srv.port}\r\n" in info
    assert tls.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert tls.peer_cn() == "Server-1"
    plain.close()
    tls.close()


def test_config_get_tls_settings(srv, certs):
    c = srv.conn()
    got = dict(zip(*[iter(c.cmd("CONFIG", "GET", "tls-*"))] * 2))
    assert got[b"tls-port"] == str(srv.tls_port).encode()
    assert got[b"tls-cert-file"] == certs.server_crt.encode()
    assert got[b"tls-auth-clients"] == b"yes"
    assert got[b"tls-protocols"] == b""
    assert got[b"tls-session-caching"] == b"yes"
    assert got[b"tls-session-cache-size"] == b"20480"
    assert got[b"tls-session-cache-timeout"] == b"300"
    assert got[b"tls-prefer-server-ciphers"] == b"no"
    assert got[b"tls-replication"] == b"no" and got[b"tls-cluster"] == b"no"
    # Not honoured (no replication, no cluster bus): refused, never OK-and-nothing.
    r = c.cmd("CONFIG", "SET", "tls-replication", "yes")
    assert isinstance(r, Error) and "tls-replication cannot be enabled" in r.msg
    r = c.cmd("CONFIG", "SET", "tls-cluster", "yes")
    assert isinstance(r, Error) and "tls-cluster cannot be enabled" in r.msg
    assert c.cmd("CONFIG", "SET", "tls-auth-clients", "maybe") == Error(
        "ERR CONFIG SET failed (possibly related to argument 'tls-auth-clients') - argument(s) must be one of the "
        "following: no, yes, optional")
    c.close()


def test_auth_clients_yes_refuses_a_client_without_certificate(srv, certs):
    assert refused(srv.tls_port, client_context(certs, cert=False))
    # A certificate from a CA the server does not trust is refused too.
    ctx = client_context(certs, cert=False)
    ctx.load_cert_chain(certs.other_crt, certs.other_key)
    assert refused(srv.tls_port, ctx)
    assert not refused(srv.tls_port, client_context(certs))
    # The server is unharmed.
    assert srv.conn().cmd("PING") == "PONG"


def test_auth_clients_optional_and_no(certs):
    s = start_tls(certs, auth="optional")
    try:
        c = TlsConn(s.tls_port, client_context(certs, cert=False))
        assert c.cmd("PING") == "PONG"
        c.close()
        ctx = client_context(certs, cert=False)
        ctx.load_cert_chain(certs.other_crt, certs.other_key)
        assert refused(s.tls_port, ctx)  # optional: a certificate given must still verify
        # CONFIG SET applies to the next connection, as in Redis.
        plain = s.conn()
        assert plain.cmd("CONFIG", "SET", "tls-auth-clients", "yes") == "OK"
        assert refused(s.tls_port, client_context(certs, cert=False))
        assert plain.cmd("CONFIG", "SET", "tls-auth-clients", "no") == "OK"
        assert not refused(s.tls_port, client_context(certs, cert=False))
    finally:
        s.stop()


def redis_cli(port, certs, *args, cert=True):
    cmd = ["redis-cli", "-p", str(port), "--tls", "--cacert", certs.ca]
    if cert:
        cmd += ["--cert", certs.client_crt, "--key", certs.client_key]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30)


@pytest.mark.skipif(not shutil.which("redis-cli"), reason="redis-cli is not installed")
def test_redis_cli_over_tls(srv, certs):
    r = redis_cli(srv.tls_port, certs, "SET", "cli", "hello")
    assert r.stdout.strip() == "OK", r.stderr
    assert redis_cli(srv.tls_port, certs, "GET", "cli").stdout.strip() == "hello"
    # Without --cert/--key the handshake is refused (tls-auth-clients yes) ...
    r = redis_cli(srv.tls_port, certs, "GET", "cli", cert=False)
    assert "hello" not in r.stdout
    # ... and accepted once client certificates are optional.
    c = srv.conn()
    assert c.cmd("CONFIG", "SET", "tls-auth-clients", "optional") == "OK"
    try:
        assert redis_cli(srv.tls_port, certs, "GET", "cli", cert=False).stdout.strip() == "hello"
    finally:
        c.cmd("CONFIG", "SET", "tls-auth-clients", "yes")
        c.close()


def test_redis_py_over_tls(srv, certs):
    redis = pytest.importorskip("redis")
    r = redis.Redis(host="127.0.0.1", port=srv.tls_port, ssl=True, ssl_ca_certs=certs.ca,
                    ssl_certfile=certs.client_crt, ssl_keyfile=certs.client_key, socket_timeout=60)
    assert r.ping()
    # Larger than the socket buffers and many TLS records: partial writes,
    # reads that stop mid-record.
    big = os.urandom(8 * 1024 * 1024)
    assert r.set("py:big", big)
    assert r.get("py:big") == big
    p = r.pipeline(transaction=False)
    for i in range(5000):
        p.set(f"py:{i}", "v" * 200)
    p.execute()
    p = r.pipeline(transaction=False)
    for i in range(5000):
        p.get(f"py:{i}")
    assert p.execute() == [b"v" * 200] * 5000
    # Several clients at once, over both shards.
    clients = [redis.Redis(host="127.0.0.1", port=srv.tls_port, ssl=True, ssl_ca_certs=certs.ca,
                           ssl_certfile=certs.client_crt, ssl_keyfile=certs.client_key) for _ in range(8)]
    for i, c in enumerate(clients):
        c.set(f"py:c{i}", i)
    assert [int(c.get(f"py:c{i}")) for i, c in enumerate(clients)] == list(range(8))
    for c in clients + [r]:
        c.close()


def test_output_back_pressure_over_tls(srv, certs):
    # 100 GETs of 1 MB sent at once: the replies pass the 64 MB pause limit,
    # the server stops parsing, and resumes as the client drains them
    # through many partial TLS writes.
    c = TlsConn(srv.tls_port, client_context(certs), timeout=120)
    value = b"v" * (1 << 20)
    assert c.cmd("SET", "bp", value) == "OK"
    c.send_raw(encode("GET", "bp") * 100 + encode("PING"))
    for _ in range(100):
        assert c.read() == value
    assert c.read() == "PONG"
    c.close()


@pytest.mark.skipif(not shutil.which("node"), reason="node is not installed")
def test_ioredis_over_tls(srv, certs):
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ioredis")):
        pytest.skip("ioredis is not installed (scripts/deps.sh test runs npm install in tests/clients/node)")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "tls_client.js"), str(srv.tls_port), certs.ca,
                        certs.client_crt, certs.client_key], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ping"] == "PONG" and out["get"] == "v1"
    assert out["mget"] == ["0", "999"]
    assert out["big"] == 3 * 1024 * 1024


def test_config_set_cert_reloads_for_new_connections(certs):
    s = start_tls(certs)
    try:
        old = TlsConn(s.tls_port, client_context(certs))
        assert old.peer_cn() == "Server-1"
        plain = s.conn()
        assert plain.cmd("CONFIG", "SET", "tls-cert-file", certs.server2_crt, "tls-key-file",
                         certs.server2_key) == "OK"
        new = TlsConn(s.tls_port, client_context(certs))
        assert new.peer_cn() == "Server-2"
        assert new.cmd("PING") == "PONG"
        # The connection made before keeps working on the old context.
        assert old.cmd("PING") == "PONG"
        assert plain.cmd("CONFIG", "GET", "tls-cert-file") == [b"tls-cert-file", certs.server2_crt.encode()]
        for c in (old, new, plain):
            c.close()
    finally:
        s.stop()


def test_config_set_bad_files_refused_and_old_context_kept(srv, certs, tmp_path):
    c = srv.conn()
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    for name, value in (("tls-cert-file", str(garbage)), ("tls-cert-file", "/nonexistent/cert.pem"),
                        ("tls-key-file", certs.server2_key),  # does not match the certificate
                        ("tls-ca-cert-file", str(garbage)), ("tls-protocols", "TLSv9"),
                        ("tls-ciphersuites", "NOPE"), ("tls-dh-params-file", str(garbage))):
        before = c.cmd("CONFIG", "GET", name)
        assert c.cmd("CONFIG", "SET", name, value) == Error(
            f"ERR CONFIG SET failed (possibly related to argument '{name}') - "
            "Unable to update TLS configuration. Check server logs."), name
        assert c.cmd("CONFIG", "GET", name) == before
    # New connections still get the old, good context.
    t = TlsConn(srv.tls_port, client_context(certs))
    assert t.peer_cn() == "Server-1" and t.cmd("PING") == "PONG"
    t.close()
    log = srv.read_log()
    assert "Failed to load certificate: " + str(garbage) in log
    assert "Failed to load private key: " in log
    assert "Invalid tls-protocols specified" in log
    c.close()


def start_fails(args):
    """Runs larder-server expecting it to refuse to start; returns its output."""
    r = subprocess.run([larder_bin(), "--port", str(free_port()), "--threads", "1"] + args,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "Sanitizer" not in out and "runtime error:" not in out, out  # the refusal path frees what it built
    return out


def test_bad_settings_refuse_start_up(certs, tmp_path):
    port = str(free_port())
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("junk\n")
    out = start_fails(["--tls-port", port, "--tls-cert-file", str(garbage), "--tls-key-file", certs.server_key,
                       "--tls-ca-cert-file", certs.ca])
    assert "Failed to load certificate: " + str(garbage) in out
    assert "Failed to configure TLS. Check logs for more info." in out
    out = start_fails(["--tls-port", port, "--tls-key-file", certs.server_key])
    assert "No tls-cert-file configured!" in out
    out = start_fails(["--tls-port", port, "--tls-cert-file", certs.server_crt, "--tls-key-file", certs.server_key])
    assert "Either tls-ca-cert-file or tls-ca-cert-dir must be specified" in out
    out = start_fails(["--tls-port", port] + server_args(certs) + ["--tls-protocols", "SSLv3"])
    assert "Invalid tls-protocols specified" in out
    out = start_fails(["--tls-port", port, "--tls-cert-file", certs.server_crt, "--tls-key-file", certs.enc_key,
                       "--tls-ca-cert-file", certs.ca, "--tls-key-file-pass", "wrong"])
    assert "Failed to load private key: " + certs.enc_key in out
    out = start_fails(["--tls-replication", "yes"])
    assert "tls-replication cannot be enabled" in out


class TlsOnlyServer(Server):
    """A server started with port 0: its readiness is checked over TLS."""

    def __init__(self, certs, extra=()):
        self.certs = certs
        self.tls_port = free_port()
        super().__init__(larder_bin(), ["--threads", "2", "--tls-port", str(self.tls_port)] + server_args(certs) +
                         ["--port", "0"] + list(extra))

    def _wait_ready(self, timeout=30, wait_loaded=True):
        assert wait_until(lambda: self.proc.poll() is not None or not refused(self.tls_port,
                                                                               client_context(self.certs)), timeout)
        if self.proc.poll() is not None:
            raise RuntimeError(self.read_log())


def test_port_0_serves_tls_only(certs):
    s = TlsOnlyServer(certs)
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        c = TlsConn(s.tls_port, client_context(certs))
        info = c.cmd("INFO", "server").decode()
        assert f"tcp_port:{s.tls_port}\r\n" in info
        assert c.cmd("CONFIG", "GET", "port") == [b"port", b"0"]
        c.close()
    finally:
        s.stop()


def test_config_set_tls_port_starts_and_stops_tls(certs):
    s = start_larder(args=server_args(certs))  # settings given, tls-port 0
    try:
        c = s.conn()
        # While TLS is off the files are not read (as Redis).
        assert c.cmd("CONFIG", "SET", "tls-cert-file", "/nonexistent") == "OK"
        tls_port = free_port()
        r = c.cmd("CONFIG", "SET", "tls-port", str(tls_port))
        assert r == Error("ERR CONFIG SET failed (possibly related to argument 'tls-port') - "
                          "Unable to update TLS configuration. Check server logs.")
        assert c.cmd("CONFIG", "SET", "tls-cert-file", certs.server_crt) == "OK"
        assert c.cmd("CONFIG", "SET", "tls-port", str(tls_port)) == "OK"
        t = TlsConn(tls_port, client_context(certs))
        assert t.cmd("PING") == "PONG"
        assert c.cmd("CONFIG", "SET", "tls-port", "0") == "OK"
        assert wait_until(lambda: refused(tls_port, client_context(certs)))
        assert t.cmd("PING") == "PONG"  # open connections stay, as with port
        # Off again, a bad file is taken unread; turning TLS on reads it.
        assert c.cmd("CONFIG", "SET", "tls-cert-file", "/nonexistent") == "OK"
        r = c.cmd("CONFIG", "SET", "tls-port", str(tls_port))
        assert isinstance(r, Error) and "Unable to update TLS configuration" in r.msg
        assert c.cmd("CONFIG", "GET", "tls-port") == [b"tls-port", b"0"]
        t.close()
        c.close()
    finally:
        s.stop()


def test_protocols_ciphers_and_encrypted_key(certs):
    s = start_tls(certs, extra=["--tls-protocols", "TLSv1.2", "--tls-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256",
                                "--tls-key-file", certs.enc_key, "--tls-key-file-pass", certs.enc_pass,
                                "--tls-prefer-server-ciphers", "yes", "--tls-session-caching", "no"])
    try:
        c = TlsConn(s.tls_port, client_context(certs))
        assert c.sock.version() == "TLSv1.2"
        assert c.sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
        assert c.cmd("PING") == "PONG"
        c.close()
        only13 = client_context(certs, minimum_version=ssl.TLSVersion.TLSv1_3)
        assert refused(s.tls_port, only13)
        plain = s.conn()
        assert plain.cmd("CONFIG", "SET", "tls-protocols", "TLSv1.3") == "OK"
        c = TlsConn(s.tls_port, client_context(certs))
        assert c.sock.version() == "TLSv1.3"
        c.close()
        plain.close()
    finally:
        s.stop()


def test_session_resumption(certs):
    s = start_tls(certs, extra=["--tls-protocols", "TLSv1.2"])
    try:
        ctx = client_context(certs)
        a = TlsConn(s.tls_port, ctx)
        a.cmd("PING")
        session = a.sock.session
        a.close()
        raw = socket.create_connection(("127.0.0.1", s.tls_port), timeout=10)
        b = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
        assert b.session_reused
        b.close()
    finally:
        s.stop()


def test_garbage_and_stalled_handshakes_are_closed(srv, certs):
    # Plain RESP on the TLS port: the handshake fails, the connection closes.
    g = socket.create_connection(("127.0.0.1", srv.tls_port), timeout=10)
    g.sendall(b"*1\r\n$4\r\nPING\r\n")
    try:
        while g.recv(4096):  # perhaps an alert, then the end
            pass
    except ConnectionResetError:
        pass
    g.close()
    # A peer that connects and never finishes its handshake is closed after
    # the handshake timeout (10 s), not kept for ever; one whose handshake
    # finished stays however long it is idle.
    idle = TlsConn(srv.tls_port, client_context(certs))
    stalled = [socket.create_connection(("127.0.0.1", srv.tls_port), timeout=30) for _ in range(3)]
    stalled[0].sendall(b"\x16\x03\x01\x00")  # the start of a ClientHello, no more
    c = srv.conn()
    assert wait_until(lambda: int(c.cmd("INFO", "clients").decode().split("connected_clients:")[1].split()[0]) >= 5)
    start = time.time()
    for s in stalled:
        assert s.recv(100) == b""
        s.close()
    assert time.time() - start < 25
    assert wait_until(lambda: int(c.cmd("INFO", "clients").decode().split("connected_clients:")[1].split()[0]) == 2)
    assert idle.cmd("PING") == "PONG"
    idle.close()
    c.close()
