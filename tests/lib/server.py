"""Starts real server processes (larder-server or redis-server) on free ports."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from resp import Conn, Error

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def larder_bin():
    path = os.environ.get("LARDER_BIN") or os.path.join(ROOT, "build", "larder-server")
    if not os.path.exists(path):
        raise RuntimeError(f"larder-server not found at {path}; build it first")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process. `argv` is the program and its arguments without the port."""

    def __init__(self, program, args=(), config_text=None, port=None, dir=None, wait_loaded=True):
        self.port = port or free_port()
        # `dir`: a folder prepared by the test (a dump to load); removed at stop too.
        self.dir = dir or tempfile.mkdtemp(prefix="larder-test-")
        self.log_path = os.path.join(self.dir, "server.log")
        cmd = [program]
        if config_text is not None:
            self.config_path = os.path.join(self.dir, "test.conf")
            with open(self.config_path, "w") as f:
                f.write(config_text)
            cmd.append(self.config_path)
        cmd += ["--port", str(self.port), "--dir", self.dir] + list(args)
        self.cmdline = cmd
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready(wait_loaded=wait_loaded)

    def _wait_ready(self, timeout=60, wait_loaded=True):
        """Until the server answers; with `wait_loaded`, until it no longer
        answers -LOADING (its start-up load, if any, is done)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early with {self.proc.returncode}: {self.read_log()}")
            try:
                c = Conn(self.port, timeout=2)
                reply = c.cmd("PING")
                c.close()
                if wait_loaded and isinstance(reply, Error) and reply.msg.startswith("LOADING"):
                    time.sleep(0.05)
                    continue
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not become ready: " + self.read_log())

    def conn(self, timeout=30):
        return Conn(self.port, timeout=timeout)

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=None):
        if self.proc.poll() is None:
            self.proc.terminate() if sig is None else self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        log = self.read_log()
        shutil.rmtree(self.dir, ignore_errors=True)
        # Under the sanitizer build a report in the log fails the test.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError(f"sanitizer report from {self.cmdline[0]}:\n{log[-5000:]}")


def start_larder(args=(), threads=2, config_text=None, dir=None, wait_loaded=True):
    """threads=None leaves the server's own default (it depends on the machine)."""
    extra = list(args)
    if "--threads" not in extra and threads is not None:
        extra += ["--threads", str(threads)]
    # No save points unless the test asks (as start_redis): a test server
    # stopped with SIGTERM would otherwise write a dump first.
    if "--save" not in extra and not (config_text and "\nsave " in "\n" + config_text):
        extra += ["--save", ""]
    return Server(larder_bin(), extra, config_text=config_text, dir=dir, wait_loaded=wait_loaded)


def start_redis(args=(), dir=None):
    program = shutil.which("redis-server")
    if not program:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return Server(program, ["--save", "", "--appendonly", "no"] + list(args), dir=dir)


def start_target(args=(), threads=2):
    """The server a client-level test runs against: larder-server with
    `threads` shards, or Debian's redis-server when LARDER_TEST_TARGET=redis
    (to check that the test itself is right: it must pass there first).
    `args` are options both servers accept."""
    if os.environ.get("LARDER_TEST_TARGET", "larder") == "redis":
        return start_redis(args)
    return start_larder(args, threads=threads)


def target_is_redis():
    return os.environ.get("LARDER_TEST_TARGET", "larder") == "redis"


def wait_until(pred, timeout=30, interval=0.05):
    """Polls `pred` until it is true or `timeout` seconds pass; returns its
    last value. Tests wait with generous bounds: these machines are noisy."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()
