"""Runs a Node.js client script from tests/clients/node against a server and
returns the JSON object its last output line holds (skips the test when
node or the npm package it needs is not installed: scripts/deps.sh test)."""
import json
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_DIR = os.path.join(ROOT, "tests", "clients", "node")


def require_package(package):
    if not shutil.which("node"):
        pytest.skip("node is not installed (scripts/deps.sh installs Debian's nodejs)")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", package)):
        pytest.skip(f"{package} is not installed: run scripts/deps.sh test (npm install in tests/clients/node)")


def run_node(port, script, *args, package="ioredis", timeout=120):
    require_package(package)
    out = subprocess.run(["node", os.path.join(NODE_DIR, script), str(port), *map(str, args)],
                         capture_output=True, text=True, timeout=timeout, cwd=NODE_DIR)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
