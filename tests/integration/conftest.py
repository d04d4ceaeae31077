import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

import pytest  # noqa: E402
from server import start_larder  # noqa: E402


@pytest.fixture(scope="module")
def larder(request):
    """One larder-server with 2 shard threads for the whole module; a module
    that needs more command-line arguments sets LARDER_ARGS."""
    s = start_larder(args=getattr(request.module, "LARDER_ARGS", ()), threads=2)
    yield s
    s.stop()


@pytest.fixture
def conn(larder):
    c = larder.conn()
    c.cmd("FLUSHALL")
    yield c
    c.close()
