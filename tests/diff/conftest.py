import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402
from harness import Differ, start_pair  # noqa: E402


@pytest.fixture(scope="session")
def servers():
    redis, larder = start_pair(threads=2)
    yield redis, larder
    redis.stop()
    larder.stop()


@pytest.fixture
def differ(servers):
    d = Differ(*servers)
    d.run("FLUSHALL")
    yield d
    d.close()
