"""Network posture and protected settings, tried as a hostile client would.

Protected mode is tried from a source address that Redis does not count as
local: 127.0.0.2 is on the loopback interface, but Redis (and Larder) treat
only 127.0.0.1 and ::1 as local peers, so a connection from it takes the
same path as one from another machine. Where the machine has a non-loopback
address of its own, that is tried too. Each refusal is compared with what
Debian's redis-server sends."""
import os
import socket
import subprocess

import pytest

from resp import Conn, Error
from server import free_port, larder_bin, start_larder, start_redis, wait_until

REMOTE = "127.0.0.2"


def error_of(conn, *args):
    """The error text a command gets (the test fails if it succeeds)."""
    reply = conn.cmd(*args)
    assert isinstance(reply, Error), f"{args!r} answered {reply!r}"
    return str(reply)


def rewritten(conn, server):
    """CONFIG REWRITE, then the config file's text."""
    assert conn.cmd("CONFIG", "REWRITE") == "OK"
    with open(server.config_path) as f:
        return f.read()


def own_non_loopback_address():
    """An address of this machine outside 127.0.0.0/8, or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") else addr


def first_reply(port, source, host="127.0.0.1"):
    """What the server answers a PING from `source`: the reply, or the error
    line it sent before closing."""
    c = Conn(port, host=host, timeout=10, source=source)
    try:
        return c.cmd("PING")
    finally:
        c.close()


def closed_after(port, source, host="127.0.0.1"):
    """True when the server closed the connection after its first reply."""
    c = Conn(port, host=host, timeout=10, source=source)
    try:
        c.cmd("PING")
        try:
            c.cmd("PING")
        except (ConnectionError, OSError):
            return True
        return False
    finally:
        c.close()


@pytest.fixture(scope="module")
def redis():
    s = start_redis()
    yield s
    s.stop()


def test_protected_mode_refuses_a_non_local_client_as_redis(redis):
    s = start_larder()
    try:
        ours = first_reply(s.port, REMOTE)
        theirs = first_reply(redis.port, REMOTE)
        assert isinstance(theirs, Error) and str(theirs).startswith("DENIED")
        assert ours == theirs
        assert closed_after(s.port, REMOTE)
        assert first_reply(s.port, "127.0.0.1") == "PONG"
        info = s.conn().cmd("INFO", "stats")
        assert b"rejected_connections:2" in info
    finally:
        s.stop()


def test_protected_mode_from_this_machines_own_address():
    addr = own_non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no address outside the loopback interface")
    s = start_larder()
    try:
        reply = first_reply(s.port, addr, host=addr)
        assert isinstance(reply, Error) and str(reply).startswith("DENIED")
    finally:
        s.stop()


def test_protected_mode_lifts_with_a_password_or_when_turned_off():
    s = start_larder(["--requirepass", "s3cret"])
    try:
        reply = first_reply(s.port, REMOTE)
        assert isinstance(reply, Error) and str(reply).startswith("NOAUTH")
    finally:
        s.stop()
    s = start_larder(["--protected-mode", "no"])
    try:
        assert first_reply(s.port, REMOTE) == "PONG"
    finally:
        s.stop()
    s = start_larder()
    try:
        c = s.conn()
        assert c.cmd("CONFIG", "SET", "protected-mode", "no") == "OK"
        assert first_reply(s.port, REMOTE) == "PONG"
        assert c.cmd("CONFIG", "SET", "protected-mode", "yes") == "OK"
        assert str(first_reply(s.port, REMOTE)).startswith("DENIED")
        # A password set at runtime lifts it too (as Redis: the default user
        # has a password now).
        assert c.cmd("CONFIG", "SET", "requirepass", "pw") == "OK"
        assert str(first_reply(s.port, REMOTE)).startswith("NOAUTH")
    finally:
        s.stop()


def test_protected_configs_are_refused_as_redis(redis):
    s = start_larder()
    try:
        c = s.conn()
        r = redis.conn()
        for name, value in (("dir", "/tmp"), ("dbfilename", "x.rdb")):
            ours = error_of(c, "CONFIG", "SET", name, value)
            assert ours == error_of(r, "CONFIG", "SET", name, value)
            assert "can't set protected config" in ours
        for name in ("enable-protected-configs", "enable-debug-command", "enable-module-command",
                     "enable-cache-rule-command"):
            assert "can't set immutable config" in error_of(c, "CONFIG", "SET", name, "yes")
        assert c.cmd("CONFIG", "GET", "enable-protected-configs") == [b"enable-protected-configs", b"no"]
        assert c.cmd("CONFIG", "GET", "enable-cache-rule-command") == [b"enable-cache-rule-command", b"local"]
    finally:
        s.stop()


def test_protected_configs_local_allows_loopback_only():
    s = start_larder(["--enable-protected-configs", "local", "--protected-mode", "no"])
    try:
        c = s.conn()
        other = os.path.join(s.dir, "elsewhere")
        os.mkdir(other)
        assert c.cmd("CONFIG", "SET", "dir", other) == "OK"
        remote = Conn(s.port, timeout=10, source=REMOTE)
        assert "can't set protected config" in error_of(remote, "CONFIG", "SET", "dir", s.dir)
        remote.close()
        assert "dbfilename can't be a path, just a filename" in error_of(c, "CONFIG", "SET", "dbfilename",
                                                                          "../../etc/x.rdb")
    finally:
        s.stop()


def test_debug_local_is_refused_to_a_non_local_client():
    s = start_larder(["--enable-debug-command", "local", "--protected-mode", "no"])
    try:
        assert s.conn().cmd("DEBUG", "SLEEP", "0") == "OK"
        remote = Conn(s.port, timeout=10, source=REMOTE)
        assert "DEBUG command not allowed" in error_of(remote, "DEBUG", "SLEEP", "0")
        remote.close()
    finally:
        s.stop()


def test_config_set_refuses_values_that_cannot_round_trip():
    s = start_larder(["--enable-protected-configs", "yes"], config_text="maxclients 100\n")
    try:
        c = s.conn()
        for bad in ("x\nenable-debug-command yes", "x\renable-debug-command yes", "x\0y"):
            assert "line breaks or NUL" in error_of(c, "CONFIG", "SET", "dbfilename", bad)
        # A password may hold any bytes (as in Redis): the rewrite escapes them.
        assert c.cmd("CONFIG", "SET", "requirepass", "pw\nenable-debug-command yes") == "OK"
        text = rewritten(c, s)
        assert not any(line.startswith("enable-debug-command") for line in text.splitlines())
    finally:
        s.stop()
    d = start_larder(config_text=text)
    try:
        c = d.conn()
        assert c.cmd("AUTH", "pw\nenable-debug-command yes") == "OK"
        assert c.cmd("CONFIG", "GET", "enable-debug-command") == [b"enable-debug-command", b"no"]
    finally:
        d.stop()


def test_config_rewrite_quotes_every_value_and_reads_it_back():
    s = start_larder(config_text="maxclients 100\n")
    tricky = 'p w"d\\ \'q\' \x01end'
    try:
        c = s.conn()
        assert c.cmd("CONFIG", "SET", "requirepass", tricky) == "OK"
        assert c.cmd("AUTH", tricky) == "OK"
        assert c.cmd("CONFIG", "SET", "save", "100 10 60 5") == "OK"
        text = rewritten(c, s)
        assert "save 100 10 60 5" in text
    finally:
        s.stop()
    # The rewritten file gives the same values to the next start.
    d = start_larder(config_text=text)
    try:
        c = d.conn()
        assert c.cmd("AUTH", tricky) == "OK"
        assert c.cmd("CONFIG", "GET", "requirepass") == [b"requirepass", tricky.encode()]
        assert c.cmd("CONFIG", "GET", "save") == [b"save", b"100 10 60 5"]
    finally:
        d.stop()


def test_config_rewrite_writes_the_file_it_was_started_with_after_dir_moves(tmp_path):
    # A relative config path, then the working directory moves (dir): the
    # rewrite still goes to the file the server read.

    conf = tmp_path / "rel.conf"
    conf.write_text("maxclients 100\n")
    moved = tmp_path / "moved"
    moved.mkdir()
    port = free_port()
    log = open(tmp_path / "log", "w")
    proc = subprocess.Popen([larder_bin(), "rel.conf", "--port", str(port), "--enable-protected-configs", "yes",
                             "--threads", "1"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        def up():
            try:
                Conn(port, timeout=1).close()
                return True
            except OSError:
                return False
        assert wait_until(up)
        c = Conn(port)
        assert c.cmd("CONFIG", "SET", "dir", str(moved)) == "OK"
        assert c.cmd("CONFIG", "SET", "maxclients", "123") == "OK"
        assert c.cmd("CONFIG", "REWRITE") == "OK"
        assert "maxclients 123" in conf.read_text()
        assert not (moved / "rel.conf").exists()
        c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_rename_command_in_the_config_file_as_redis():
    s = start_larder(config_text='rename-command CONFIG "ADMINCFG"\nrename-command FLUSHALL ""\n')
    try:
        c = s.conn()
        assert "unknown command 'CONFIG'" in error_of(c, "CONFIG", "GET", "maxclients")
        assert c.cmd("ADMINCFG", "GET", "maxclients") == [b"maxclients", b"10000"]
        assert "unknown command 'FLUSHALL'" in error_of(c, "FLUSHALL")
        assert c.cmd("SET", "k", "v") == "OK"
    finally:
        s.stop()
    s = start_larder(["--rename-command", "DEBUG", ""])
    try:
        assert "unknown command 'DEBUG'" in error_of(s.conn(), "DEBUG", "SLEEP", "0")
    finally:
        s.stop()
    for bad, why in (('rename-command NOSUCHCMD x\n', "No such command in rename-command"),
                     ('rename-command GET SET\n', "Target command name already exists")):
        try:
            start_larder(config_text=bad)
        except RuntimeError as e:
            assert why in str(e)
        else:
            raise AssertionError(f"started with {bad!r}")
