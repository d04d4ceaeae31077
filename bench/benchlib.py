"""Helpers the bench scripts share."""
import re
import subprocess


def redis_benchmark(port, command, requests, keys, pipeline, clients=50, extra=()):
    """Runs redis-benchmark for one command (a list of words, __rand_int__
    in them drawn from `keys`); returns its requests per second."""
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(requests), "-r", str(keys), "-c",
                          str(clients), "-P", str(pipeline), "-q", *extra, *command],
                         check=True, capture_output=True, text=True).stdout
    return float(re.findall(r"([\d.]+) requests per second", out)[-1])
