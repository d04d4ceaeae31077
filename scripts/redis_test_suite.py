#!/usr/bin/env python3
"""Runs units of Redis 7.0.15's own Tcl test suite in external mode against
larder-server and prints, per unit, what passed and what failed.

Get the suite outside the repository (it is never committed):
    add deb-src to the Types: line of /etc/apt/sources.list.d/debian.sources
    apt-get update && cd /some/dir && apt-get source redis

    python3 scripts/redis_test_suite.py --suite /some/dir/redis-7.0.15 \\
        unit/type/string unit/keyspace ...

A test that raises (an unknown command, a config Larder lacks) stops a Tcl
unit there. So each unit runs on a fresh server, and every test that raised
is added to --skiptest and the unit run again, until it completes: the final
run's passes, its assertion failures, and the tests skipped that way are the
result. With --spawn the suite starts the servers itself, as it does
against redis-server (a shim at src/redis-server in the copy runs
larder-server, without the few directives of the suite's default.conf it
does not know): the tests tagged external:skip (ACL, auth, anything with
config overrides) run too. To name the test that raised, the suite is copied to --work and its
test_helper.tcl made to print the "testing" message each test sends (one
line, nothing else changed). Not part of CI: it needs the suite and takes
about 15 minutes for the units issue 11 names.
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TESTING_HOOK = "} elseif {$status eq {testing}} {"


SHIM = """#!/usr/bin/env python3
# Written by scripts/redis_test_suite.py --spawn: the suite starts
# src/redis-server <conf> [args]; run larder-server instead, without the
# directives of default.conf (and the harness) that it does not know.
import os, sys
DROP = {"repl-diskless-sync-delay", "slave-serve-stale-data", "no-appendfsync-on-rewrite",
        "enable-protected-configs", "enable-module-command", "propagation-error-behavior", "unixsocket"}
args = sys.argv[1:]
if args and not args[0].startswith("--"):
    lines = open(args[0]).read().splitlines()
    keep = [l for l in lines if not l.split() or l.split()[0].lower() not in DROP]
    open(args[0] + ".larder", "w").write("\\n".join(keep) + "\\n")
    args[0] += ".larder"
print(f"larder shim PID: {os.getpid()}", flush=True)  # the suite waits for " PID: <pid>"
os.execv(BINARY, [BINARY] + args + ["--threads", "THREADS"])
"""


def write_shim(copy, binary, threads):
    os.makedirs(os.path.join(copy, "src"), exist_ok=True)
    path = os.path.join(copy, "src", "redis-server")
    with open(path, "w") as f:
        f.write(SHIM.replace("BINARY", repr(os.path.abspath(binary)), 2).replace("THREADS", str(threads)))
    os.chmod(path, 0o755)


def prepare_suite(suite, work):
    copy = os.path.join(work, "suite")
    if not os.path.exists(copy):
        shutil.copytree(suite, copy, symlinks=True)
        helper = os.path.join(copy, "tests", "test_helper.tcl")
        text = open(helper).read()
        if TESTING_HOOK not in text:
            sys.exit(f"{helper}: no '{TESTING_HOOK}' line: not the 7.0 suite?")
        text = text.replace(TESTING_HOOK, TESTING_HOOK + '\n        puts "\\[testing\\]: $data"', 1)
        open(helper, "w").write(text)
    return copy


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, threads, work):
    port = free_port()
    data = tempfile.mkdtemp(dir=work, prefix="dir-")
    log = open(os.path.join(work, "server.log"), "a")
    proc = subprocess.Popen([binary, "--port", str(port), "--threads", str(threads), "--dir", data,
                             "--enable-debug-command", "yes"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port, data
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("larder-server did not start")


def run_once(suite, unit, port, skips, log_path):
    # Spawning, the suite's ports start at a random base, so that other runs
    # of the suite on the machine do not collide with this one (the suite
    # needs each port and port + 10000 free, below 65536).
    where = ["--host", "127.0.0.1", "--port", str(port)] if port else [
        "--baseport", str(random.randrange(22000, 50000, 1000))]
    cmd = ["./runtest"] + where + [
        "--tags", "-slow", "--single", unit, "--ignore-encoding", "--timeout", "120"]
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
        if args.spawn:
            rc, text = run_once(suite, unit, None, skips, log_path)
            crashed = False
        else:
            proc, port, data = start_server(args.binary, args.threads, args.work)
            try:
                rc, text = run_once(suite, unit, port, skips, log_path)
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
    p.add_argument("--spawn", action="store_true",
                   help="let the suite start larder-server itself (runs the external:skip tests too)")
    p.add_argument("units", nargs="+")
    args = p.parse_args()
    args.work = os.path.abspath(args.work or tempfile.mkdtemp(prefix="larder-tcl-"))
    os.makedirs(args.work, exist_ok=True)
    suite = prepare_suite(os.path.abspath(args.suite), args.work)
    if args.spawn:
        write_shim(suite, args.binary, args.threads)
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
