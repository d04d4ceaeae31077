"""Statistics that both servers must keep alike: which replies count as
errors in INFO errorstats, total_error_replies and failed_calls."""
import time


def _stats(conn):
    fields = {}
    for section in ("errorstats", "stats", "commandstats"):
        for line in conn.cmd("INFO", section).decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                fields[k] = v
    errors = {k: v for k, v in fields.items() if k.startswith("errorstat_")}
    debug = dict(kv.split("=") for kv in fields.get("cmdstat_debug", "calls=0,failed_calls=0").split(","))
    return errors, fields["total_error_replies"], debug["calls"], debug.get("failed_calls")


def _reset(conn):
    assert conn.cmd("CONFIG", "RESETSTAT") == "OK"
    deadline = time.time() + 10
    while _stats(conn)[0] and time.time() < deadline:
        time.sleep(0.02)


def test_debug_error_is_not_counted_as_an_error(differ):
    # Redis writes DEBUG ERROR's reply as raw bytes: no errorstat, no
    # total_error_replies, no failed call. Errors DEBUG's own handler replies count.
    for conn in (differ.redis, differ.larder):
        _reset(conn)
    for args in (("DEBUG", "ERROR", "WRONGTYPE made up"), ("DEBUG", "ERROR", "plain words"),
                 ("DEBUG", "NOSUCH"), ("DEBUG", "OTHER", "x")):
        differ.run(*args)
    assert _stats(differ.redis) == _stats(differ.larder)
    errors, total, calls, failed = _stats(differ.larder)
    assert errors == {"errorstat_ERR": "count=2"} and total == "2" and calls == "4" and failed == "2"
