#!/usr/bin/env python3
"""Checks that directories under src/ depend one way.

Reads every `#include "dir/file.h"` under src/ and fails when a directory
includes one it may not (ALLOWED below, the order docs/architecture.md
draws), or when the includes between directories form a cycle. A project
header outside src/ or a directory missing from ALLOWED fails too, so a new
directory has to take its place in the order first.

    python3 tests/layers/check_includes.py [path/to/src]
"""
import os
import re
import sys

# Lowest first: each directory may include itself and what is listed.
ALLOWED = {
    "common": set(),
    "resp": {"common"},
    "ds": {"common"},
    "script": {"common", "resp"},
    "net": {"common"},
    "keyspace": {"common", "ds"},
    "rdb": {"common", "ds", "keyspace"},
    "shard": {"common", "net", "keyspace"},
    "cache": {"common", "ds", "keyspace", "shard"},
    "config": {"common", "resp", "cache"},
    "engine": {"common", "resp", "ds", "net", "keyspace", "shard", "cache", "config", "script", "rdb"},
    "commands": {"common", "resp", "ds", "net", "keyspace", "shard", "cache", "config", "engine", "script", "rdb"},
    "server": {"common", "resp", "ds", "net", "keyspace", "shard", "cache", "config", "engine", "commands", "script", "rdb"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def scan(src):
    edges = {}  # (from_dir, to_dir) -> first "file:line" seen
    problems = []
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            parts = rel.split(os.sep)
            if len(parts) < 2:
                problems.append(f"{rel}: a source file must live in a directory under src/")
                continue
            here = parts[0]
            if here not in ALLOWED:
                problems.append(f"{rel}: directory '{here}' has no place in the layer order (ALLOWED)")
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    if "/" not in target:
                        problems.append(f"{rel}:{lineno}: include \"{target}\" by its directory path")
                        continue
                    there = target.split("/")[0]
                    if not os.path.exists(os.path.join(src, target)):
                        problems.append(f"{rel}:{lineno}: \"{target}\" does not exist under src/")
                        continue
                    if there == here:
                        continue
                    edges.setdefault((here, there), f"{rel}:{lineno}")
                    if there not in ALLOWED.get(here, set()):
                        problems.append(f"{rel}:{lineno}: '{here}' may not include '{there}' (\"{target}\")")
    return edges, problems


def find_cycle(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if not state.get(nxt):
                found = visit(nxt, stack)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node):
            found = visit(node, [])
            if found:
                return found
    return None


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")
    edges, problems = scan(src)
    # Every include edge is checked against ALLOWED, so the order itself must
    # be free of cycles for "one way" to hold.
    cycle = find_cycle([(a, b) for a, deps in ALLOWED.items() for b in deps if b != a])
    if cycle:
        problems.append("ALLOWED is not an order: " + " -> ".join(cycle))
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} layering problem(s); the order is in docs/architecture.md")
        return 1
    print(f"layers ok: {len(edges)} edges between {len(ALLOWED)} directories")
    return 0


if __name__ == "__main__":
    sys.exit(main())
