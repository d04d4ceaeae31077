"""Test certificates made with the openssl command-line tool, never committed:
a CA, server certificates it signed (for 127.0.0.1 and localhost), a client
certificate, and, for the failure cases, a certificate from another CA and an
encrypted key.

    c = make_certs(tmpdir)
    c.ca, c.server_crt, c.server_key, c.client_crt, c.client_key
    c.server2_crt, c.server2_key      # a second server identity (reloads)
    c.other_crt, c.other_key          # signed by a CA the server does not trust
    c.enc_key, c.enc_pass             # server_key encrypted with enc_pass
"""
import os
import subprocess
from types import SimpleNamespace

EXTENSIONS = """\
[ server_cert ]
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost

[ client_cert ]
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""


def _run(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _key(path):
    # EC keys: made in milliseconds, unlike RSA keys of a useful size.
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)


def _ca(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    _key(key)
    _run("req", "-x509", "-new", "-sha256", "-key", key, "-days", "30", "-subj", f"/O=Larder Test/CN={name}",
         "-out", crt)
    return crt, key


def _signed(d, name, cn, ca_crt, ca_key, extensions):
    key, crt, csr = (os.path.join(d, name + ext) for ext in (".key", ".crt", ".csr"))
    _key(key)
    _run("req", "-new", "-sha256", "-key", key, "-subj", f"/O=Larder Test/CN={cn}", "-out", csr)
    _run("x509", "-req", "-sha256", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial", "-days", "30",
         "-extfile", os.path.join(d, "openssl.cnf"), "-extensions", extensions, "-out", crt)
    return crt, key


def make_certs(d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "openssl.cnf"), "w") as f:
        f.write(EXTENSIONS)
    c = SimpleNamespace(dir=d)
    c.ca, c.ca_key = _ca(d, "ca")
    c.server_crt, c.server_key = _signed(d, "server", "Server-1", c.ca, c.ca_key, "server_cert")
    c.server2_crt, c.server2_key = _signed(d, "server2", "Server-2", c.ca, c.ca_key, "server_cert")
    c.client_crt, c.client_key = _signed(d, "client", "Client", c.ca, c.ca_key, "client_cert")
    other_ca, other_ca_key = _ca(d, "other-ca")
    c.other_crt, c.other_key = _signed(d, "other", "Other", other_ca, other_ca_key, "client_cert")
    c.enc_pass = "s3cret"
    c.enc_key = os.path.join(d, "server-enc.key")
    _run("pkey", "-in", c.server_key, "-aes256", "-passout", "pass:" + c.enc_pass, "-out", c.enc_key)
    return c


def server_args(c, auth="yes"):
    """larder-server / redis-server options for TLS with these certificates."""
    return ["--tls-cert-file", c.server_crt, "--tls-key-file", c.server_key, "--tls-ca-cert-file", c.ca,
            "--tls-auth-clients", auth]
