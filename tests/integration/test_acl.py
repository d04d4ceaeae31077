"""ACL over real sockets: users, AUTH, NOPERM for commands, keys and
selectors, ACL LOG, requirepass, CLIENT KILL USER, users from the config
file, the command line and an aclfile."""
import os
import tempfile

import pytest

from resp import Error
from server import start_larder, wait_until

NOPERM_KEY = Error("NOPERM this user has no permissions to access one of the keys used as arguments")
WRONGPASS = Error("WRONGPASS invalid username-password pair or user is disabled.")


def as_map(reply):
    """A RESP2 map (flat list of pairs) as a dict of str keys."""
    return {reply[i].decode(): reply[i + 1] for i in range(0, len(reply), 2)}


@pytest.fixture
def admin(larder):
    c = larder.conn()
    c.cmd("FLUSHALL")
    yield c
    for name in c.cmd("ACL", "USERS"):
        if name != b"default":
            c.cmd("ACL", "DELUSER", name)
    c.cmd("ACL", "SETUSER", "default", "on", "nopass", "~*", "&*", "+@all")
    c.cmd("ACL", "LOG", "RESET")
    c.close()


def test_default_user(admin):
    assert admin.cmd("ACL", "WHOAMI") == b"default"
    assert admin.cmd("ACL", "LIST") == [b"user default on nopass ~* &* +@all"]
    assert admin.cmd("ACL", "USERS") == [b"default"]
    assert b"user=default" in admin.cmd("CLIENT", "INFO")


def test_auth_user_pass(larder, admin):
    assert admin.cmd("ACL", "SETUSER", "alice", "on", ">p1", ">p2", "~*", "+@all") == "OK"
    c = larder.conn()
    assert c.cmd("AUTH", "alice", "wrong") == WRONGPASS
    assert c.cmd("AUTH", "nobody", "p1") == WRONGPASS
    assert c.cmd("AUTH", "alice", "p2") == "OK"
    assert c.cmd("ACL", "WHOAMI") == b"alice"
    assert b"user=alice" in c.cmd("CLIENT", "INFO")
    # A disabled user cannot log in.
    admin.cmd("ACL", "SETUSER", "alice", "off")
    c2 = larder.conn()
    assert c2.cmd("AUTH", "alice", "p1") == WRONGPASS
    # HELLO ... AUTH
    admin.cmd("ACL", "SETUSER", "alice", "on")
    r = c2.cmd("HELLO", "2", "AUTH", "alice", "p1")
    assert isinstance(r, list)
    assert c2.cmd("ACL", "WHOAMI") == b"alice"
    assert c2.cmd("HELLO", "2", "AUTH", "alice", "nope") == WRONGPASS
    # AUTH <pass> alone is refused while the default user has no password.
    assert c.cmd("AUTH", "x") == Error(
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your "
        "configuration is correct?")
    c.close()
    c2.close()


def test_command_permissions(larder, admin):
    admin.cmd("ACL", "SETUSER", "bob", "on", "nopass", "~*", "-@all", "+get", "+acl|whoami", "+config|get")
    c = larder.conn()
    assert c.cmd("AUTH", "bob", "x") == "OK"
    assert c.cmd("GET", "k") is None
    assert c.cmd("SET", "k", "v") == Error("NOPERM this user has no permissions to run the 'set' command")
    assert c.cmd("CONFIG", "SET", "maxclients", "100") == Error(
        "NOPERM this user has no permissions to run the 'config|set' command")
    assert isinstance(c.cmd("CONFIG", "GET", "maxclients"), list)
    # Changes apply to connections already authenticated.
    admin.cmd("ACL", "SETUSER", "bob", "+@string")
    assert c.cmd("SET", "k", "v") == "OK"
    admin.cmd("ACL", "SETUSER", "bob", "-@all")
    assert c.cmd("GET", "k") == Error("NOPERM this user has no permissions to run the 'get' command")
    # rejected calls are counted
    assert b"rejected_calls=1" in admin.cmd("INFO", "commandstats").split(b"cmdstat_get:")[1].split(b"\r\n")[0]
    c.close()


def test_read_and_write_key_patterns(larder, admin):
    admin.cmd("ACL", "SETUSER", "kp", "on", "nopass", "+@all", "%R~read*", "%W~write*")
    admin.cmd("SET", "readkey", "v")
    c = larder.conn()
    c.cmd("AUTH", "kp", "x")
    assert c.cmd("GET", "readkey") == b"v"
    assert c.cmd("SET", "readkey", "x") == NOPERM_KEY
    assert c.cmd("LPUSH", "writelist", "1") == 1
    assert c.cmd("GET", "writelist") == NOPERM_KEY
    assert c.cmd("COPY", "readkey", "writekey") == 1
    assert c.cmd("COPY", "writekey", "readkey") == NOPERM_KEY
    user = as_map(admin.cmd("ACL", "GETUSER", "kp"))
    assert user["keys"] == b"%R~read* %W~write*"
    assert user["commands"] == b"+@all"
    c.close()


def test_selectors(larder, admin):
    admin.cmd("ACL", "SETUSER", "sel", "on", "nopass", "-@all", "resetkeys", "(+@write ~write::*)",
              "(+@read ~read::*)")
    c = larder.conn()
    c.cmd("AUTH", "sel", "x")
    assert c.cmd("SET", "write::foo", "bar") == "OK"
    assert c.cmd("GET", "read::foo") is None
    assert c.cmd("GET", "write::foo") == NOPERM_KEY
    assert c.cmd("SET", "read::foo", "bar") == NOPERM_KEY
    assert c.cmd("PING") == Error("NOPERM this user has no permissions to run the 'ping' command")
    user = as_map(admin.cmd("ACL", "GETUSER", "sel"))
    sels = [as_map(s) for s in user["selectors"]]
    assert [s["keys"] for s in sels] == [b"~write::*", b"~read::*"]
    assert [s["commands"] for s in sels] == [b"-@all +@write", b"-@all +@read"]
    assert admin.cmd("ACL", "SETUSER", "sel", "(+get") == Error(
        "ERR Unmatched parenthesis in acl selector starting at '(+get'.")
    assert admin.cmd("ACL", "SETUSER", "sel", "(&* &fail)") == Error(
        "ERR Error in ACL SETUSER modifier '(&* &fail)': Adding a pattern after the * pattern (or the "
        "'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an "
        "empty list of channels")
    admin.cmd("ACL", "SETUSER", "sel", "clearselectors")
    assert as_map(admin.cmd("ACL", "GETUSER", "sel"))["selectors"] == []
    c.close()


def test_setuser_errors(admin):
    assert admin.cmd("ACL", "SETUSER", "x", "bogus") == Error(
        "ERR Error in ACL SETUSER modifier 'bogus': Syntax error")
    assert admin.cmd("ACL", "SETUSER", "x", "+nosuch") == Error(
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL")
    assert admin.cmd("ACL", "SETUSER", "a b") == Error("ERR Usernames can't contain spaces or null characters")
    # Nothing applied when one rule fails.
    assert admin.cmd("ACL", "GETUSER", "x") is None
    assert admin.cmd("ACL", "DELUSER", "default") == Error("ERR The 'default' user cannot be removed")
    assert admin.cmd("ACL", "CAT", "nosuch") == Error("ERR Unknown category 'nosuch'")
    assert admin.cmd("ACL", "GENPASS", "5000") == Error(
        "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
    assert len(admin.cmd("ACL", "GENPASS")) == 64
    assert len(admin.cmd("ACL", "GENPASS", "5")) == 2
    assert admin.cmd("ACL", "LOAD") == Error(
        "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL "
        "SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in "
        "order to store users in the Redis configuration.")


def test_acl_cat_and_dryrun(admin):
    cats = admin.cmd("ACL", "CAT")
    assert cats[:3] == [b"keyspace", b"read", b"write"] and len(cats) == 21
    assert b"get" in admin.cmd("ACL", "CAT", "string")
    assert b"set" not in admin.cmd("ACL", "CAT", "keyspace")
    dangerous = admin.cmd("ACL", "CAT", "dangerous")
    for c in (b"cache|rule", b"cache|warm", b"cache|deadletter", b"flushall", b"acl|setuser"):
        assert c in dangerous
    admin.cmd("ACL", "SETUSER", "dry", "+@all", "%R~read*", "%W~write*", "%RW~rw*")
    assert admin.cmd("ACL", "DRYRUN", "dry", "GET", "read") == "OK"
    assert admin.cmd("ACL", "DRYRUN", "dry", "GET", "write") == b"This user has no permissions to access the 'write' key"
    assert admin.cmd("ACL", "DRYRUN", "nouser", "GET", "read") == Error("ERR User 'nouser' not found")
    assert admin.cmd("ACL", "DRYRUN", "dry", "nocmd", "read") == Error("ERR Command 'nocmd' not found")
    admin.cmd("ACL", "SETUSER", "dry", "-set")
    assert admin.cmd("ACL", "DRYRUN", "dry", "SET", "rw", "1") == \
        b"This user has no permissions to run the 'set' command"


def test_acl_log(larder, admin):
    admin.cmd("ACL", "SETUSER", "antirez", ">foo", "on", "+set", "~object:1234")
    c = larder.conn()
    assert c.cmd("AUTH", "antirez", "foo") == "OK"
    for _ in range(3):
        c.cmd("GET", "foo")
    entry = as_map(admin.cmd("ACL", "LOG")[0])
    assert entry["count"] == 3
    assert entry["reason"] == b"command"
    assert entry["context"] == b"toplevel"
    assert entry["object"] == b"get"
    assert entry["username"] == b"antirez"
    assert b"user=antirez" in entry["client-info"] and b"cmd=get" in entry["client-info"]
    assert set(entry) == {"count", "reason", "context", "object", "username", "age-seconds", "client-info"}
    c.cmd("SET", "somekeynotallowed", "1")
    entry = as_map(admin.cmd("ACL", "LOG")[0])
    assert (entry["reason"], entry["object"]) == (b"key", b"somekeynotallowed")
    c.cmd("AUTH", "antirez", "wrong")
    entry = as_map(admin.cmd("ACL", "LOG")[0])
    assert (entry["reason"], entry["object"], entry["username"]) == (b"auth", b"AUTH", b"antirez")
    assert len(admin.cmd("ACL", "LOG", "2")) == 2
    assert admin.cmd("ACL", "LOG", "RESET") == "OK"
    assert admin.cmd("ACL", "LOG") == []
    admin.cmd("CONFIG", "SET", "acllog-max-len", "5")
    for j in range(10):
        c.cmd("SET", f"obj:{j}", "1")
    assert len(admin.cmd("ACL", "LOG")) == 5
    admin.cmd("CONFIG", "SET", "acllog-max-len", "128")
    c.close()


def test_deluser_closes_its_connections(larder, admin):
    admin.cmd("ACL", "SETUSER", "not_used", "on", ">passwd")
    assert admin.cmd("ACL", "DELUSER", "not_used", "nosuch") == 1
    assert admin.cmd("PING") == "PONG"
    admin.cmd("ACL", "SETUSER", "using", "on", "+acl", ">passwd")
    c = larder.conn()
    other = larder.conn()
    c.cmd("AUTH", "using", "passwd")
    other.cmd("AUTH", "using", "passwd")
    assert c.cmd("ACL", "DELUSER", "using") == 1
    for conn in (c, other):
        conn.sock.settimeout(10)
        assert conn.sock.recv(10) == b""


def test_client_kill_user(larder, admin):
    admin.cmd("ACL", "SETUSER", "killme", "on", "nopass", "+@all", "~*")
    c = larder.conn()
    c.cmd("AUTH", "killme", "x")
    assert admin.cmd("CLIENT", "KILL", "USER", "nosuch") == Error("ERR No such user 'nosuch'")
    assert admin.cmd("CLIENT", "KILL", "USER", "killme") == 1
    c.sock.settimeout(10)
    assert c.sock.recv(10) == b""
    assert admin.cmd("CLIENT", "KILL", "USER", "killme") == 0


def test_default_user_off_and_requirepass(larder, admin):
    admin.cmd("ACL", "SETUSER", "default", "off")
    c = larder.conn()
    assert c.cmd("GET", "a") == Error("NOAUTH Authentication required.")
    admin.cmd("ACL", "SETUSER", "default", "on")
    assert c.cmd("GET", "a") is None
    # CONFIG SET requirepass sets the default user's password.
    admin.cmd("CONFIG", "SET", "requirepass", "s3cret")
    assert as_map(admin.cmd("ACL", "GETUSER", "default"))["flags"] == [b"on"]
    c2 = larder.conn()
    assert c2.cmd("GET", "a") == Error("NOAUTH Authentication required.")
    assert c2.cmd("AUTH", "wrong") == WRONGPASS
    assert c2.cmd("AUTH", "s3cret") == "OK"
    assert c2.cmd("AUTH", "default", "s3cret") == "OK"
    admin.cmd("CONFIG", "SET", "requirepass", "")
    assert b"nopass" in admin.cmd("ACL", "LIST")[0]
    c.close()
    c2.close()


def test_users_from_config_file_and_command_line():
    conf = "user alice on >pw ~a* +@all\nuser default on nopass ~* &* +@all -flushdb\n"
    s = start_larder(config_text=conf, args=["--user", "bob", "on", "nopass", "+get", "~b*"])
    try:
        c = s.conn()
        assert c.cmd("FLUSHDB") == Error("NOPERM this user has no permissions to run the 'flushdb' command")
        assert c.cmd("AUTH", "alice", "pw") == "OK"
        assert c.cmd("SET", "b1", "x") == NOPERM_KEY
        assert c.cmd("SET", "a1", "x") == "OK"
        assert c.cmd("AUTH", "bob", "") == "OK"
        assert c.cmd("GET", "b1") is None
        assert c.cmd("ACL", "USERS") == Error("NOPERM this user has no permissions to run the 'acl|users' command")
        c.close()
    finally:
        s.stop()


def test_bad_user_line_and_both_sources_refuse_to_start():
    with pytest.raises(RuntimeError):
        start_larder(args=["--user", "x", "+nosuch"])
    path = os.path.join(tempfile.mkdtemp(), "users.acl")
    open(path, "w").write("user a on nopass +@all\n")
    with pytest.raises(RuntimeError):
        start_larder(args=["--aclfile", path, "--user", "b", "on"])


def test_aclfile_load_and_save():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "users.acl")
    with open(path, "w") as f:
        f.write("user alice on allcommands allkeys &* >alice\n")
        f.write("user bob on -@all +@set +acl ~set* &* >bob\n")
        f.write("user default on nopass ~* &* +@all\n")
    s = start_larder(args=["--aclfile", path])
    try:
        c = s.conn()
        assert c.cmd("AUTH", "bob", "bob") == "OK"
        assert c.cmd("SADD", "set1", "a") == 1
        assert c.cmd("GET", "x") == Error("NOPERM this user has no permissions to run the 'get' command")
        admin = s.conn()
        assert admin.cmd("ACL", "SETUSER", "carol", "on", ">c", "+get", "~c*") == "OK"
        assert admin.cmd("ACL", "SAVE") == "OK"
        text = open(path).read()
        assert "user carol on #" in text and "user default on nopass ~* &* +@all" in text
        admin.cmd("ACL", "DELUSER", "carol")
        # LOAD puts carol back and ends the connections of non-default users.
        assert admin.cmd("ACL", "LOAD") == "OK"
        assert b"carol" in admin.cmd("ACL", "USERS")
        c.sock.settimeout(10)
        assert c.sock.recv(10) == b""
        with open(path, "a") as f:
            f.write("user broken on +nosuch\n")
        err = admin.cmd("ACL", "LOAD")
        assert isinstance(err, Error)
        assert "Error in applying operation '+nosuch': Unknown command or category name in ACL" in err.msg
        assert err.msg.endswith("WARNING: ACL errors detected, no change to the previously active ACL rules was "
                                "performed")
        assert b"broken" not in admin.cmd("ACL", "USERS")
        admin.close()
    finally:
        s.stop()


def test_config_rewrite_writes_the_users():
    s = start_larder(config_text="user default on nopass ~* &* +@all -flushdb\n")
    try:
        c = s.conn()
        assert c.cmd("ACL", "SETUSER", "eve", "on", ">pw", "~e*", "+get") == "OK"
        assert c.cmd("CONFIG", "REWRITE") == "OK"
        text = open(s.config_path).read()
        lines = [l for l in text.splitlines() if l.startswith("user ")]
        assert lines[0] == "user default on nopass sanitize-payload ~* &* +@all -flushdb"
        assert lines[1].startswith("user eve on #") and lines[1].endswith(" ~e* resetchannels -@all +get")
    finally:
        s.stop()

