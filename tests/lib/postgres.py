"""A throw-away PostgreSQL cluster for tests: initdb into a temporary
directory as the unprivileged 'postgres' user (trust authentication,
loopback only), started on a free port, removed by stop().

Needs Debian's postgresql package (scripts/deps.sh test installs it)."""
import glob
import os
import shutil
import subprocess
import tempfile

from server import free_port, wait_until  # noqa: F401  (tests use postgres.wait_until)


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


def _as_postgres(cmd, **kw):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Postgres:
    def __init__(self, extra_options=""):
        """extra_options: more `-c name=value` for the server (ssl=on ...)."""
        self.extra_options = extra_options
        self.dir = tempfile.mkdtemp(prefix="larder-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        _as_postgres([pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"])
        self.start()

    @property
    def uri(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self):
        _as_postgres([pg_bin("pg_ctl"), "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                      f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                      f"-c max_connections=200 {self.extra_options}", "start"])

    def stop_server(self):
        _as_postgres([pg_bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"])

    def sql(self, statement):
        """Runs SQL through psql; returns its unaligned output."""
        p = subprocess.run([pg_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.uri, "-c",
                            statement], check=True, capture_output=True, text=True)
        return p.stdout.strip()

    def stop(self):
        try:
            self.stop_server()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def available():
    try:
        pg_bin("initdb")
        return True
    except RuntimeError:
        return False
