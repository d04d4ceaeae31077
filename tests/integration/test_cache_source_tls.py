"""A PostgreSQL cache source over TLS: libpq's sslmode in the source URI is
honoured (Larder passes the URI to libpq as it is). The throw-away cluster
runs with ssl=on and a certificate made for the test; the server's own view
(pg_stat_ssl) says whether Larder's connection is encrypted."""
import os
import shutil

import pytest

import certs
import postgres
from resp import Error
from server import start_larder

pytestmark = pytest.mark.skipif(not postgres.available(), reason="PostgreSQL not installed")


@pytest.fixture(scope="module")
def tls_pg(tmp_path_factory):
    c = certs.make_certs(str(tmp_path_factory.mktemp("pgcerts")))
    pg = postgres.Postgres()
    # The server's key must belong to the server's user and be private.
    for src, name in ((c.server_crt, "server.crt"), (c.server_key, "server.key")):
        dst = os.path.join(pg.dir, name)
        shutil.copy(src, dst)
        if os.geteuid() == 0:
            shutil.chown(dst, "postgres", "postgres")
        os.chmod(dst, 0o600)
    pg.stop_server()
    pg.extra_options = (f"-c ssl=on -c ssl_cert_file={pg.dir}/server.crt -c ssl_key_file={pg.dir}/server.key")
    pg.start()
    pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'ada');")
    yield pg, c
    pg.stop()


def encrypted_larder_connections(pg):
    return pg.sql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                  "WHERE a.application_name = 'larder' AND s.ssl")


@pytest.mark.parametrize("query", ["sslmode=require", "sslmode=verify-full&sslrootcert={ca}"])
def test_loads_go_over_tls_when_the_uri_asks(tls_pg, query):
    pg, c = tls_pg
    uri = pg.uri + "?" + query.format(ca=c.ca)
    srv = start_larder(config_text=f"cache-source shop {uri}\n"
                                   "cache-rule user:<id> source shop as string ttl 1h "
                                   "load \"SELECT name FROM users WHERE id = :id\"\n")
    try:
        conn = srv.conn()
        assert conn.cmd("GET", "user:1") == b"ada"
        assert int(encrypted_larder_connections(pg)) >= 1
    finally:
        srv.stop()


def test_verify_full_refuses_a_server_the_ca_did_not_sign(tls_pg):
    pg, c = tls_pg
    other_ca = os.path.join(c.dir, "other-ca.crt")
    uri = pg.uri + f"?sslmode=verify-full&sslrootcert={other_ca}&connect_timeout=5"
    srv = start_larder(config_text=f"cache-source shop {uri}\n"
                                   "cache-rule user:<id> source shop as string ttl 1h "
                                   "load \"SELECT name FROM users WHERE id = :id\"\n")
    try:
        r = srv.conn().cmd("GET", "user:1")
        assert isinstance(r, Error) and "certificate" in str(r), r
    finally:
        srv.stop()
