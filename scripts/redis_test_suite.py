#!/usr/bin/env python3
"""Runs units of Redis 7.0.15's own Tcl test suite against larder-server and
prints, per unit, what passed and what failed: in external mode (one
larder-server the script starts), or with --own-servers, where the suite
starts larder-server itself for each start_server block, with the block's
overrides (units tagged external:skip, such as unit/auth, run only so).

Get the suite outside the repository (it is never committed):
    add deb-src to the Types: line of /etc/apt/sources.list.d/debian.sources
    apt-get update && cd /some/dir && apt-get source redis

    python3 scripts/redis_test_suite.py --suite /some/dir/redis-7.0.15 \\
        unit/type/string unit/keyspace ...

A test that raises (an unknown command, a config Larder lacks) stops a Tcl
unit there. So each unit runs on a fresh server, and every test that raised
is added to --skiptest and the unit run again, until it completes: the final
run's passes, its assertion failures, and the tests skipped that way are the
result. To name the test that raised, the suite is copied to --work and its
test_helper.tcl made to print the "testing" message each test sends (one
line, nothing else changed). Tests tagged slow are left out unless --slow,
those tagged large-memory unless --large-memory. Not part of CI: it needs the suite and takes
about 15 minutes for the units issue 11 names.

--tls runs the units over TLS, as Redis's own `./runtest --tls`: the copy
gets the certificates Redis's utils/gen-test-certs.sh makes (in its
tests/tls/, never in --suite itself) and runtest gets --tls (its clients then
present tests/tls/client.crt). In external mode larder-server serves only a
tls-port (port 0) with them; with --own-servers the copy's
tests/support/server.tcl stops asking for tls-replication, tls-cluster and
the tls-client-* files (Larder has no replication, cluster bus or outgoing
connections). It needs the tcl-tls package.
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TESTING_HOOK = "} elseif {$status eq {testing}} {"


def prepare_suite(suite, work, tls=False):
    copy = os.path.join(work, "suite")
    if tls and not os.path.exists(os.path.join(copy, "tests", "tls", "redis.dh")):
        prepare_suite(suite, work)
        print("making the TLS test certificates (utils/gen-test-certs.sh)...", flush=True)
        subprocess.run(["bash", "utils/gen-test-certs.sh"], cwd=copy, check=True, capture_output=True)
    if not os.path.exists(copy):
        shutil.copytree(suite, copy, symlinks=True)
        helper = os.path.join(copy, "tests", "test_helper.tcl")
        text = open(helper).read()
        if TESTING_HOOK not in text:
            sys.exit(f"{helper}: no '{TESTING_HOOK}' line: not the 7.0 suite?")
        text = text.replace(TESTING_HOOK, TESTING_HOOK + '\n        puts "\\[testing\\]: $data"', 1)
        open(helper, "w").write(text)
    return copy


# default.conf lines for replication and AOF settings Larder does not have
# (a server given them would refuse to start).
UNKNOWN_DEFAULTS = ("slave-serve-stale-data", "no-appendfsync-on-rewrite", "repl-diskless-sync-delay",
                    "propagation-error-behavior")


# What tests/support/server.tcl adds to a server's config under --tls that
# Larder does not take (no replication, cluster bus or outgoing connections).
TLS_SERVER_LINES = ('dict set config "tls-client-cert-file"', 'dict set config "tls-client-key-file"',
                    'dict set config "tls-cluster" "yes"', 'dict set config "tls-replication" "yes"')


def prepare_own_servers(copy, binary, threads, tls=False):
    """--own-servers: the suite starts its servers itself (units tagged
    external:skip run too). src/redis-server becomes larder-server (with
    --threads), redis-cli and redis-benchmark Debian's, and default.conf
    loses the lines for settings Larder does not have."""
    src = os.path.join(copy, "src")
    os.makedirs(src, exist_ok=True)
    wrapper = os.path.join(src, "redis-server")
    if os.path.lexists(wrapper):
        os.remove(wrapper)
    with open(wrapper, "w") as f:
        # The thread count goes into the suite's config file (or first, when
        # there is none), so that the suite's own arguments stay as the test
        # wrote them: `--port` alone last, or values right after the file.
        b = os.path.abspath(binary)
        f.write(f'#!/bin/sh\nif [ -n "$1" ] && [ "${{1#-}}" = "$1" ]; then echo "threads {threads}" >> "$1"; '
                f'exec {b} "$@"; fi\nexec {b} --threads {threads} "$@"\n')
    os.chmod(wrapper, 0o755)
    for tool in ("redis-cli", "redis-benchmark", "redis-check-aof", "redis-check-rdb"):
        dst = os.path.join(src, tool)
        if shutil.which(tool) and not os.path.lexists(dst):
            os.symlink(shutil.which(tool), dst)
    conf = os.path.join(copy, "tests", "assets", "default.conf")
    lines = open(conf).read().splitlines()
    kept = [l for l in lines if not l.split() or l.split()[0] not in UNKNOWN_DEFAULTS]
    open(conf, "w").write("\n".join(kept) + "\n")
    if tls:
        path = os.path.join(copy, "tests", "support", "server.tcl")
        lines = open(path).read().splitlines()
        kept = [l for l in lines if not any(l.strip().startswith(t) for t in TLS_SERVER_LINES)]
        open(path, "w").write("\n".join(kept) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_ready(suite, port):
    """Whether a TLS handshake and PING succeed with the suite's client certificate."""
    d = os.path.join(suite, "tests", "tls")
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")


def start_server(binary, threads, work, suite=None, tls=False):
    port = free_port()
    data = tempfile.mkdtemp(dir=work, prefix="dir-")
    log = open(os.path.join(work, "server.log"), "a")
    args = [binary, "--port", str(port), "--threads", str(threads), "--dir", data, "--enable-debug-command", "yes",
            "--enable-protected-configs", "yes"]
    if tls:
        d = os.path.join(suite, "tests", "tls")
        # As the suite's own servers under --tls (tests/support/server.tcl),
        # less tls-replication/tls-cluster, which Larder has not.
        args += ["--port", "0", "--tls-port", str(port), "--tls-cert-file", os.path.join(d, "server.crt"),
                 "--tls-key-file", os.path.join(d, "server.key"), "--tls-ca-cert-file", os.path.join(d, "ca.crt"),
                 "--tls-dh-params-file", os.path.join(d, "redis.dh")]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            if tls:
                if tls_ready(suite, port):
                    return proc, port, data
            else:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port, data
        except (OSError, ssl.SSLError):
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    sys.exit("larder-server did not start")


def run_once(suite, unit, port, skips, log_path, extra=(), slow=False):
    target = ["--host", "127.0.0.1", "--port", str(port)] if port else ["--clients", "1"]
    tags = [] if slow else ["--tags", "-slow"]
    cmd = ["./runtest", *target, *tags, "--single", unit, "--ignore-encoding", "--timeout", "120", *extra]
    # runtest's own ports (its test server, the servers it starts): away from
    # the default, which another run on this machine may hold, and below the
    # ephemeral range (outgoing connections hold ports there).
    cmd += ["--baseport", str(random.randrange(22000, 31000, 100))]
    for s in skips:
        cmd += ["--skiptest", s]
    with open(log_path, "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=suite, stdout=f, stderr=subprocess.STDOUT, timeout=900).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return rc, ANSI.sub("", open(log_path, errors="replace").read())


def parse(text):
    """The counts, the failed assertions, the test that raised (if any)."""
    lines = text.splitlines()
    ok = sum(1 for l in lines if l.startswith("[ok]"))
    ignored = sum(1 for l in lines if l.startswith("[ignore]"))
    errors, finished, current, raised = [], set(), None, None
    for i, l in enumerate(lines):
        if l.startswith("[testing]: "):
            current = l[len("[testing]: "):]
        m = re.match(r"^\[(ok|err)\]: (.*?)( \(\d+ ms\))?$", l)
        if m:
            name = m.group(2).split(" in tests/")[0]
            finished.add(name)
            if m.group(1) == "err":
                errors.append((name, lines[i + 1] if i + 1 < len(lines) else ""))
        if l.startswith("[exception]") or l.startswith("[TIMEOUT]"):
            msg = l.replace("[exception]: Executing test client: ", "")
            raised = (current if current not in finished else None, msg)
    return ok, ignored, errors, raised


def run_unit(suite, unit, args):
    skips, raised_tests = [], []
    for it in range(1, args.max_runs + 1):
        log_path = os.path.join(args.work, unit.replace("/", "_") + f".run{it}.log")
        extra = ["--tls"] if args.tls else []
        if args.large_memory:
            extra.append("--large-memory")
        if args.own_servers:
            rc, text = run_once(suite, unit, None, skips, log_path, extra, args.slow)
            crashed = False
        else:
            proc, port, data = start_server(args.binary, args.threads, args.work, suite, args.tls)
            try:
                rc, text = run_once(suite, unit, port, skips, log_path, extra, args.slow)
            finally:
                crashed = proc.poll() is not None
                proc.terminate()
                proc.wait()
                shutil.rmtree(data, ignore_errors=True)
        ok, ignored, errors, raised = parse(text)
        if crashed:
            raised_tests.append(("(server exited)", raised[1] if raised else f"rc={rc}"))
        if raised is None and rc != 124:
            break
        test, msg = raised if raised else (None, f"runtest timed out (rc={rc})")
        if test is None or test in skips:  # outside any test body: nothing to skip
            raised_tests.append(("(outside a test)", msg))
            break
        skips.append(test)
        raised_tests.append((test, msg))
    return {"unit": unit, "passed": ok, "ignored": ignored, "failed": [list(e) for e in errors],
            "raised": [list(r) for r in raised_tests], "runs": it, "last_log": log_path}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", required=True, help="the redis-7.0.15 source folder (apt-get source redis)")
    p.add_argument("--binary", default=os.environ.get("LARDER_BIN", os.path.join(ROOT, "build", "larder-server")))
    p.add_argument("--threads", type=int, default=2, help="shard threads (2 exercises the cross-shard paths)")
    p.add_argument("--work", default=None, help="folder for the suite copy, logs and results")
    p.add_argument("--max-runs", type=int, default=60)
    p.add_argument("--own-servers", action="store_true",
                   help="let the suite start larder-server itself (runs the units tagged external:skip)")
    p.add_argument("--tls", action="store_true", help="serve and test over TLS (runtest --tls)")
    p.add_argument("--slow", action="store_true", help="run the tests tagged slow too (left out by default)")
    p.add_argument("--large-memory", action="store_true",
                   help="run the tests tagged large-memory too (runtest --large-memory; they need several GB)")
    p.add_argument("units", nargs="+")
    args = p.parse_args()
    args.work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="larder-tcl-"))
    os.makedirs(args.work, exist_ok=True)
    suite = prepare_suite(os.path.abspath(args.suite), args.work, args.tls)
    if args.own_servers:
        prepare_own_servers(suite, args.binary, args.threads, args.tls)
    results = []
    for unit in args.units:
        r = run_unit(suite, unit, args)
        results.append(r)
        print(f"{unit}: passed {r['passed']}, failed {len(r['failed'])}, raised {len(r['raised'])}, "
              f"ignored {r['ignored']} ({r['runs']} runs)", flush=True)
    json.dump(results, open(os.path.join(args.work, "results.json"), "w"), indent=1)
    print("\n| unit | passed | failed (assertion) | raised (skipped) | ignored (tags) |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['unit']} | {r['passed']} | {len(r['failed'])} | {len(r['raised'])} | {r['ignored']} |")
    print(f"| total | {sum(r['passed'] for r in results)} | {sum(len(r['failed']) for r in results)} | "
          f"{sum(len(r['raised']) for r in results)} | {sum(r['ignored'] for r in results)} |")
    for r in results:
        for name, detail in r["failed"]:
            print(f"FAILED {r['unit']}: {name} :: {detail[:200]}")
        for name, msg in r["raised"]:
            print(f"RAISED {r['unit']}: {name} :: {msg[:200]}")
    print(f"\nlogs and results.json in {args.work}")


if __name__ == "__main__":
    main()
