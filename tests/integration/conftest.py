import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

import pytest  # noqa: E402
from server import start_larder  # noqa: E402


@pytest.fixture(scope="module")
def larder():
    """One larder-server with 2 shard threads for the whole module."""
    s = start_larder(threads=2)
    yield s
    s.stop()


@pytest.fixture
def conn(larder):
    c = larder.conn()
    c.cmd("FLUSHALL")
    yield c
    c.close()
