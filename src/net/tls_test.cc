// TlsContext::Build's refusals: the reasons the server logs before "Failed
// to configure TLS" (start-up) or "Unable to update TLS configuration"
// (CONFIG SET). Certificates themselves are exercised end to end by
// tests/integration/test_tls.py, which makes them with the openssl tool.
#include "net/tls.h"

#include <gtest/gtest.h>

namespace larder::net {
namespace {

TlsSettings Files() {
  TlsSettings s;
  s.cert_file = "/nonexistent/server.crt";
  s.key_file = "/nonexistent/server.key";
  s.ca_cert_file = "/nonexistent/ca.crt";
  return s;
}

std::string Refusal(const TlsSettings& s) {
  std::string err;
  EXPECT_EQ(TlsContext::Build(s, &err), nullptr);
  return err;
}

TEST(TlsContextTest, NeedsACertificateAndAKey) {
  TlsSettings s = Files();
  s.cert_file.clear();
  EXPECT_EQ(Refusal(s), "No tls-cert-file configured!");
  s = Files();
  s.key_file.clear();
  EXPECT_EQ(Refusal(s), "No tls-key-file configured!");
}

TEST(TlsContextTest, VerifyingClientsNeedsACa) {
  TlsSettings s = Files();
  s.ca_cert_file.clear();
  EXPECT_EQ(Refusal(s),
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or "
            "tls-auth-clients are enabled!");
  s.verifies_clients = false;  // tls-auth-clients no: a CA is not needed (the files still are)
  EXPECT_EQ(Refusal(s).rfind("Failed to load certificate: /nonexistent/server.crt: ", 0), 0u);
}

TEST(TlsContextTest, ProtocolsAreRedisNames) {
  TlsSettings s = Files();
  for (const char* bad : {"TLSv9", "SSLv3", "TLSv1.2 junk"}) {
    s.protocols = bad;
    EXPECT_EQ(Refusal(s),
              "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'.")
        << bad;
  }
  // Valid lists (any case) get as far as reading the files.
  for (const char* good : {"TLSv1.2", "tlsv1.3", "TLSv1.2 TLSv1.3", "TLSv1 TLSv1.1"}) {
    s.protocols = good;
    EXPECT_EQ(Refusal(s).rfind("Failed to load certificate: ", 0), 0u) << good;
  }
}

}  // namespace
}  // namespace larder::net
