"""COMMAND INFO for every command both servers have must agree (arity,
flags, key range, ACL categories, tips, key specs, subcommands), apart from
the differences docs/compatibility.md lists, which are spelled out here so
that any other difference fails."""

# Larder's own commands, and Redis 7.4 ones Redis 7.0 does not have.
LARDER_ONLY = {b"cache", b"hexpire", b"hexpireat", b"hexpiretime", b"hpersist", b"hpexpire", b"hpexpireat",
               b"hpexpiretime", b"hpttl", b"httl"}

# command -> {field: (redis, larder)}, each documented in compatibility.md.
KNOWN = {
    # WITHSCORE (Redis 7.2).
    b"zrank": {"arity": (3, -3)},
    b"zrevrank": {"arity": (3, -3)},
    # Larder keeps AUTH and HELLO out of MONITOR and the slow log with these flags.
    b"auth": {"flags": (["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
                        ["noscript", "loading", "stale", "skip_monitor", "skip_slowlog", "fast", "no_auth",
                         "allow_busy"])},
    b"hello": {"flags": (["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
                         ["noscript", "loading", "stale", "skip_monitor", "skip_slowlog", "fast", "no_auth",
                          "allow_busy"])},
}

# Subcommands not implemented (or, for client|setinfo, from Redis 7.2).
# FUNCTION has only FLUSH, LIST and HELP until scripting comes.
MISSING_SUBCOMMANDS = {b"client|caching", b"client|getredir", b"client|tracking", b"client|trackinginfo",
                       b"latency|graph", b"function|delete", b"function|dump",
                       b"function|kill", b"function|load", b"function|restore", b"function|stats"}
EXTRA_SUBCOMMANDS = {b"client|setinfo"}

FIELDS = ["name", "arity", "flags", "first", "last", "step", "acl", "tips", "key_specs", "subcommands"]


def _differences(a, b, out):
    name = a[0]
    for field, x, y in zip(FIELDS, a, b):
        if field == "subcommands":
            xs = {s[0]: s for s in x}
            ys = {s[0]: s for s in y}
            for missing in set(xs) - set(ys):
                out.append((missing, "missing", None))
            for extra in set(ys) - set(xs):
                out.append((extra, "extra", None))
            for sub in set(xs) & set(ys):
                _differences(xs[sub], ys[sub], out)
        elif x != y:
            out.append((name, field, (x, y)))


def test_command_info_matches_redis(differ):
    names = [n for n in differ.larder.cmd("COMMAND", "LIST") if b"|" not in n]
    assert len(names) > 150
    found = []
    for name in names:
        a = differ.redis.cmd("COMMAND", "INFO", name)[0]
        b = differ.larder.cmd("COMMAND", "INFO", name)[0]
        if a is None:
            assert name in LARDER_ONLY, name
            continue
        _differences(a, b, found)
    unexpected = []
    for name, field, values in found:
        if field == "missing" and name in MISSING_SUBCOMMANDS:
            continue
        if field == "extra" and name in EXTRA_SUBCOMMANDS:
            continue
        if KNOWN.get(name, {}).get(field) == values:
            continue
        unexpected.append((name, field, values))
    assert not unexpected, "\n".join(map(repr, unexpected))


def test_subcommands_by_full_name(differ):
    # COMMAND INFO and DOCS take "container|subcommand", as in Redis 7.
    for name in ("config|get", "client|list", "object|encoding", "CONFIG|SET", "config|nosuch", "get|x"):
        a = differ.redis.cmd("COMMAND", "INFO", name)[0]
        b = differ.larder.cmd("COMMAND", "INFO", name)[0]
        assert (a is None) == (b is None), name
        if a is not None:
            assert a[:3] == b[:3], name  # name, arity, flags
        docs_a = differ.redis.cmd("COMMAND", "DOCS", name)
        docs_b = differ.larder.cmd("COMMAND", "DOCS", name)
        assert docs_a[::2] == docs_b[::2], name


def test_movable_keys_commands(differ):
    # Commands whose key positions come from their arguments declare
    # movablekeys, as Redis does; the others do not.
    movable = [b"sintercard", b"zunion", b"zinter", b"zdiff", b"zunionstore", b"zinterstore", b"zdiffstore",
               b"zintercard", b"lmpop", b"blmpop", b"zmpop", b"bzmpop", b"georadius", b"georadiusbymember"]
    for info in differ.larder.cmd("COMMAND", "INFO", *movable):
        assert "movablekeys" in info[2], info[0]
    for info in differ.larder.cmd("COMMAND", "INFO", "get", "set", "mset", "bitfield", "sinterstore", "lmove"):
        assert "movablekeys" not in info[2], info[0]
    # COMMAND (all commands) says the same.
    flags = {info[0]: info[2] for info in differ.larder.cmd("COMMAND")}
    assert all("movablekeys" in flags[n] for n in movable)
